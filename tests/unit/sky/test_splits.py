"""Deterministic, cell-based train/val/test splits."""
from __future__ import annotations

import random

import numpy as np
import pytest

from evalcore.sky.splits import SPLITS, assign_splits, sky_cell, split_for, split_with_neighbours


def test_split_is_deterministic_and_has_the_planned_fractions():
    rng = np.random.default_rng(0)
    ra = rng.uniform(0, 360, 20000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 20000)))
    first = [split_for(a, d) for a, d in zip(ra, dec)]
    assert first == [split_for(a, d) for a, d in zip(ra, dec)]
    counts = {s: first.count(s) / len(first) for s in SPLITS}
    assert counts["train"] == pytest.approx(0.7, abs=0.02)
    assert counts["val"] == pytest.approx(0.1, abs=0.01)
    assert counts["test"] == pytest.approx(0.2, abs=0.015)


def test_split_depends_only_on_the_cell():
    # cells are about 1 arcmin: points 1 arcsec around a cell's middle share it, and its split
    ra, dec = 150.0 + 0.5 / 60, 2.0 + 0.5 / 60
    cell = sky_cell(ra, dec)
    for dra, ddec in [(1, 0), (-1, 0), (0, 1), (0, -1), (0.7, 0.7)]:
        assert sky_cell(ra + dra / 3600, dec + ddec / 3600) == cell
        assert split_for(ra + dra / 3600, dec + ddec / 3600) == split_for(ra, dec)
    assert sky_cell(ra + 360, dec) == cell
    # cells stay ~1 arcmin wide on the sky at high declination
    band, idx = sky_cell(10.0, 80.0)
    assert sky_cell(10.0 + 1.2 / 60 / np.cos(np.radians(80)), 80.0)[1] != idx
    # different cells do not all share one split
    assert len({split_for(150 + k / 60, 2.0) for k in range(40)}) == 3


def _straddling_pair():
    """Two positions 1 arcsec apart on either side of a cell edge whose cells have different splits."""
    for k in range(1000):
        edge_dec = -30.0 + k / 60
        a, b = (45.0, edge_dec - 0.5 / 3600), (45.0, edge_dec + 0.5 / 3600)
        if sky_cell(*a) != sky_cell(*b) and split_for(*a) != split_for(*b):
            return a, b
    raise AssertionError("no straddling pair found")


def test_near_duplicates_across_a_cell_edge_share_a_split_in_any_order():
    a, b = _straddling_pair()
    far = (200.0, 10.0)
    got = assign_splits([a, b, far, (None, None)], names=["x", "x dup", "y", "no position"])
    assert got[0] == got[1]
    assert got[2] == split_for(*far)
    assert got[3] == split_for(None, None, name="no position")
    positions = [a, b, far]
    order = list(range(3))
    random.Random(1).shuffle(order)
    shuffled = assign_splits([positions[i] for i in order])
    assert [shuffled[order.index(i)] for i in range(3)] == got[:3]
    # a newcomer next to a stored galaxy inherits its split
    assert split_with_neighbours(*b, stored=[(*a, split_for(*a))]) == split_for(*a)
    assert split_with_neighbours(*b, stored=[(0.0, 0.0, "train")]) == split_for(*b)


def test_name_fallback_and_bad_input():
    assert split_for(None, None, name="NGC 1300") == split_for(None, None, name="  ngc   1300 ")
    assert split_for(None, 5.0, name="NGC 1300") == split_for(None, None, name="NGC 1300")
    with pytest.raises(ValueError, match="needs a position"):
        split_for(None, None)
    with pytest.raises(ValueError, match=r"dec must lie in \[-90, 90\]"):
        split_for(10.0, 95.0)
    with pytest.raises(ValueError, match="finite"):
        split_for(float("nan"), 0.0)
    assert split_for(0.0, 90.0) in SPLITS and split_for(359.999, -90.0) in SPLITS
