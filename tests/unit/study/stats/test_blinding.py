"""The blinding audit on constructed cases: chance guessing, perfectly guessable sources, too few guesses."""
import numpy as np
import pandas as pd
import pytest

from evalcore.study.stats import SchemaError, blinding_audit, blinding_confusion

SOURCES = ["model", "volunteers", "sparcfire"]


def _guesses(n_raters, n_items, guess, structure="spiral", seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_raters):
        for i in range(n_items):
            for position, true in enumerate(rng.permutation(SOURCES), start=1):
                rows.append({"study": "s", "rater": f"r{r}", "item": f"i{i}", "structure": structure,
                             "panel_position": position, "true_source": true, "guessed_source": guess(true, rng),
                             "n_choices": 3})
    return pd.DataFrame(rows)


def test_random_guessing_is_reported_as_no_sign_of_unblinding():
    guesses = _guesses(10, 12, lambda true, rng: rng.choice(SOURCES), seed=1)
    row = blinding_audit(guesses).iloc[0]
    assert row.n_answered == 360 and row.chance == pytest.approx(1 / 3)
    assert row.ci_low < 1 / 3 < row.ci_high and row.p_value > 0.05
    assert row.verdict.startswith("No sign that raters could tell the sources apart")


def test_perfect_guessing_is_reported_plainly():
    guesses = _guesses(4, 5, lambda true, rng: true)
    row = blinding_audit(guesses).iloc[0]
    assert (row.n_correct, row.accuracy) == (60, 1.0)
    assert row.ci_low > 0.9 and row.p_value < 1e-20
    assert row.verdict.startswith("Raters could tell the sources apart") and "did not hold" in row.verdict


def test_few_guesses_are_inconclusive_and_dont_know_is_counted_not_scored():
    answer = {"model": "sparcfire", "volunteers": "volunteers", "sparcfire": None}  # right, wrong, don't know
    guesses = _guesses(1, 2, lambda true, rng: answer[true])
    row = blinding_audit(guesses).iloc[0]
    assert (row.n_guesses, row.n_dont_know, row.n_answered, row.n_correct) == (6, 2, 4, 2)
    assert row.verdict.startswith("Too few guesses")


def test_one_model_picked_out_shows_in_the_confusion_table():
    # raters always recognise the arc finder's binary masks and guess at random between the other two
    guesses = _guesses(8, 10, lambda true, rng: true if true == "sparcfire" else rng.choice(SOURCES[:2]), seed=3)
    audit = blinding_audit(guesses).set_index("structure")
    assert audit.loc["spiral", "ci_low"] > 1 / 3  # overall the sources can be told apart
    confusion = blinding_confusion(guesses).set_index(["true_source", "guessed_source"])["share_of_true_source"]
    assert confusion.loc[("sparcfire", "sparcfire")] == 1.0
    assert 0.3 < confusion.loc[("model", "model")] < 0.7
    assert audit.loc["(all structures)", "n_answered"] == len(guesses)


def test_bad_guess_tables_are_refused_clearly():
    guesses = _guesses(1, 1, lambda true, rng: true)
    with pytest.raises(SchemaError, match="n_choices"):
        blinding_audit(guesses.drop(columns="n_choices"))
    with pytest.raises(SchemaError, match="n_choices must be an integer >= 2"):
        blinding_audit(guesses.assign(n_choices=1))
    with pytest.raises(SchemaError, match="more than one guess"):
        blinding_audit(pd.concat([guesses, guesses.iloc[:1]]))
