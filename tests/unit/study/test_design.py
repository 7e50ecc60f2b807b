import itertools

import numpy as np
import pytest

from evalcore.study.design import assign, position_balance, williams_orders


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_williams_rows_balance_positions_and_successions(n):
    rows = williams_orders(n)
    assert all(sorted(r) == list(range(n)) for r in rows)
    pos = np.zeros((n, n), int)
    follows = np.zeros((n, n), int)
    for r in rows:
        for p, s in enumerate(r):
            pos[s, p] += 1
        for a, b in itertools.pairwise(r):
            follows[a, b] += 1
    assert np.all(pos == pos[0, 0])
    off_diagonal = follows[~np.eye(n, dtype=bool)]
    assert np.all(off_diagonal == off_diagonal[0])


def test_every_item_gets_its_raters_and_load_is_even():
    slots = assign(n_items=40, n_raters=7, raters_per_item=3, n_sources=3, seed=1)
    per_item = {}
    for s in slots:
        per_item.setdefault(s.item, set()).add(s.rater)
    assert all(len(r) == 3 for r in per_item.values()) and len(per_item) == 40
    load = np.bincount([s.rater for s in slots])
    assert load.max() - load.min() <= 1


def test_positions_are_balanced_across_the_study():
    slots = assign(n_items=60, n_raters=6, raters_per_item=3, n_sources=3, seed=2)
    counts = position_balance(slots, 3)
    assert counts.max() - counts.min() <= 0.1 * counts.mean()


def test_design_is_seeded_and_rater_sequences_differ():
    a = assign(n_items=20, n_raters=4, raters_per_item=2, n_sources=3, seed=5)
    assert a == assign(n_items=20, n_raters=4, raters_per_item=2, n_sources=3, seed=5)
    assert a != assign(n_items=20, n_raters=4, raters_per_item=2, n_sources=3, seed=6)
    seqs = [[s.item for s in a if s.rater == r] for r in range(4)]
    assert len({tuple(sorted(s)) for s in seqs}) > 1 or len({tuple(s) for s in seqs}) > 1


def test_impossible_designs_are_refused():
    with pytest.raises(ValueError, match="needs 4 raters"):
        assign(n_items=3, n_raters=2, raters_per_item=4, n_sources=2, seed=0)
