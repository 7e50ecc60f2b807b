import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from evalcore.formats import gz3d
from evalcore.sky import rasterise


def test_square_covers_the_pixel_centres_inside_half_open():
    mask = rasterise.polygon_mask([[1, 1], [4, 1], [4, 3], [1, 3]], (6, 6))
    expected = np.zeros((6, 6), bool)
    expected[1:3, 1:4] = True  # rows y=1,2 and columns x=1,2,3: left/top edges in, right/bottom edges out
    assert np.array_equal(mask, expected)


def test_two_polygons_sharing_an_edge_never_both_claim_a_pixel():
    left = rasterise.polygon_mask([[0, 0], [5, 0], [5, 8], [0, 8]], (10, 10))
    right = rasterise.polygon_mask([[5, 0], [9, 0], [9, 8], [5, 8]], (10, 10))
    assert not (left & right).any()
    assert (left | right)[0:8, 0:9].all()


@pytest.mark.parametrize("seed", range(5))
def test_fill_matches_the_release_point_in_polygon_test(seed):
    # vertices off the half-pixel grid, so no pixel centre lies on an edge and both tests must agree exactly
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
    radii = rng.uniform(5, 30, 12)
    poly = np.column_stack([40 + radii * np.cos(angles), 35 + radii * np.sin(angles)]) + 0.013
    shape = (70, 80)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    expected = MplPath(poly).contains_points(np.column_stack([xs.ravel(), ys.ravel()])).reshape(shape)
    assert np.array_equal(rasterise.polygon_mask(poly, shape), expected)
    assert expected.sum() > 100


def test_polygons_partly_outside_are_clipped_and_degenerate_ones_are_empty():
    mask = rasterise.polygon_mask([[-10, -10], [3, -10], [3, 2], [-10, 2]], (5, 5))
    assert mask.sum() == 6 and mask[:2, :3].all()  # rows 0, 1 and columns 0..2
    assert not rasterise.polygon_mask([[1, 1], [3, 3]], (5, 5)).any()
    assert not rasterise.polygon_mask([[1, 1], [2, 2], [3, 3]], (5, 5)).any()


def test_self_intersection_follows_the_open_path():
    assert rasterise.is_self_intersecting([[0, 0], [2, 2], [2, 0], [0, 2]])
    assert not rasterise.is_self_intersecting([[0, 0], [2, 0], [2, 2], [0, 2]])
    assert not rasterise.is_self_intersecting([[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]])  # closed by hand
    assert rasterise.is_self_intersecting([[0, 0], [4, 0], [2, 0], [2, 3]])  # doubles back on itself
    assert not rasterise.is_self_intersecting([[0, 0], [1, 0], [1, 0], [1, 1]])  # repeated vertex


def test_union_and_count():
    a, b = [[0, 0], [4, 0], [4, 4], [0, 4]], [[2, 0], [6, 0], [6, 4], [2, 4]]
    assert rasterise.count_mask([a, b], (5, 7))[1, 3] == 2
    assert rasterise.union_mask([a, b], (5, 7)).sum() == 24


# --- HDU 3 / 4 cross-check ------------------------------------------------------------------------------
def _counts():
    c = np.zeros((60, 60))
    c[10:25, 8:30] = 3
    c[15:20, 12:18] = 5
    return c


def test_identical_maps_agree():
    facts = gz3d.compare_counts(_counts(), _counts())
    assert facts["agrees"] and facts["pixels_differing"] == 0 and "best_match" not in facts


def test_a_flipped_hdu_is_named():
    facts = gz3d.compare_counts(_counts(), _counts()[::-1])
    assert not facts["agrees"] and facts["fraction_differing"] > 0.5
    assert facts["best_match"] == {"transform": "flipped up-down", "fraction_differing": 0.0}
    assert "the HDU is flipped up-down" in gz3d.describe_disagreement(3, facts)


def test_an_offset_hdu_is_named_with_its_offset():
    theirs = np.roll(_counts(), (1, 2), axis=(0, 1))  # the file's map sits 2 px right and 1 px down
    facts = gz3d.compare_counts(_counts(), theirs)
    assert facts["best_match"]["transform"] == "offset by dx=2, dy=1 px"
    text = gz3d.describe_disagreement(4, facts)
    assert text.startswith("HDU 4 differs") and "offset by dx=2, dy=1 px" in text


def test_unrelated_maps_get_no_false_verdict():
    other = np.zeros((60, 60))
    other[40:55, 40:55] = 1
    facts = gz3d.compare_counts(_counts(), other)
    assert not facts["agrees"] and facts["best_match"]["fraction_differing"] > 0.5
    assert "may be" in gz3d.describe_disagreement(3, facts) or facts["best_match"]["transform"] == "as stored"
