"""The compiled spiral measurement gives the results of its plain numpy/Python definition (Django-free).

``evalcore.measure.spiral`` runs its per-pixel and per-resample loops compiled (numba); with ``_COMPILED``
off it runs the same steps written out in numpy/Python. Every mask here is measured both ways and every
number of the result must agree to rounding (1e-9), so any divergence of the compiled path fails.
"""
import math

import numpy as np
import pytest
from spiral_drawings import CENTRE, N, drawn_outline, drawn_spiral

from evalcore.measure import spiral
from evalcore.measure.spiral import measure_spiral

TOL = 1e-9


def measure_pure(monkeypatch, image, **kw):
    with monkeypatch.context() as m:
        m.setattr(spiral, "_COMPILED", False)
        return measure_spiral(image, **kw)


def assert_same(fast, pure, path="result"):
    """Equal structure, equal ints / strings / flags, floats equal to rounding."""
    if isinstance(pure, dict):
        assert fast.keys() == pure.keys(), path
        for k in pure:
            assert_same(fast[k], pure[k], f"{path}.{k}")
    elif isinstance(pure, list):
        assert len(fast) == len(pure), path
        for i, (a, b) in enumerate(zip(fast, pure)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(pure, float) and not isinstance(fast, bool):
        assert isinstance(fast, float) and math.isclose(fast, pure, rel_tol=TOL, abs_tol=TOL), (path, fast, pure)
    else:
        assert fast == pure, (path, fast, pure)


def check(monkeypatch, image, **kw):
    fast = measure_spiral(image, **kw)
    pure = measure_pure(monkeypatch, image, **kw)
    assert_same(fast.to_dict(), pure.to_dict())
    return fast


@pytest.mark.parametrize("pitch,n_arms,q,disk_pa", [
    (8.0, 2, 1.0, 0.0), (15.0, 3, 0.7, 120.0), (25.0, 2, 0.45, 30.0), (40.0, 1, 0.8, 75.0),
    (-12.0, 2, 0.6, 160.0), (-30.0, 4, 1.0, 0.0), (-45.0, 2, 0.3, 10.0),
])
def test_drawn_spirals_of_any_pitch_arm_count_chirality_and_inclination(monkeypatch, pitch, n_arms, q, disk_pa):
    res = check(monkeypatch, drawn_spiral(pitch, n_arms=n_arms, q=q, disk_pa=disk_pa,
                                          half_width=0.6 / n_arms), disk_axis_ratio=q,
                disk_position_angle=disk_pa, n_boot=60, seed=n_arms)
    assert res.measured and res.chirality == ("S" if pitch > 0 else "Z")


def test_the_default_bootstrap_on_an_inclined_spiral(monkeypatch):
    res = check(monkeypatch, drawn_spiral(20.0, q=0.55, disk_pa=30.0), disk_axis_ratio=0.55,
                disk_position_angle=30.0)
    assert res.n_arms == 2 and all(a.pitch_err > 0 for a in res.arms)


@pytest.mark.parametrize("ends,taper", [("square", False), ("round", True)])
@pytest.mark.parametrize("pitch", [12.0, -25.0])
def test_drawn_outlines(monkeypatch, pitch, ends, taper):
    image = drawn_outline(pitch, q=0.6, disk_pa=40.0, ends=ends, taper=taper, half_width=0.3, r_out=45.0)
    check(monkeypatch, image, disk_axis_ratio=0.6, disk_position_angle=40.0, n_boot=80)


def test_ragged_fractional_masks(monkeypatch):
    # Missing pixels and graded fractions: outline pixels scattered about the sides, which the side trimming
    # and its robust sigma must treat the same way compiled.
    rng = np.random.default_rng(5)
    for pitch, q in ((20.0, 1.0), (-33.0, 0.65)):
        clean = drawn_spiral(pitch, q=q, disk_pa=50.0, half_width=0.25)
        ragged = np.maximum(clean * (rng.random(clean.shape) < 0.6), drawn_spiral(pitch, q=q, disk_pa=50.0,
                                                                                  half_width=0.08))
        ragged *= rng.uniform(0.3, 1.0, clean.shape)
        check(monkeypatch, ragged, relative_threshold=0.01, disk_axis_ratio=q, disk_position_angle=50.0,
              n_boot=100, seed=7)


def test_empty_one_pixel_specks_rings_and_small_arms(monkeypatch):
    check(monkeypatch, np.zeros((N, N)))
    one = np.zeros((N, N))
    one[20, 30] = 1.0
    assert not check(monkeypatch, one).measured
    one_at_centre = np.zeros((N, N))
    one_at_centre[int(CENTRE), int(CENTRE)] = 0.5
    check(monkeypatch, one_at_centre)
    rows, cols = np.indices((N, N)).astype(float)
    r = np.hypot(rows - CENTRE, cols - CENTRE)
    check(monkeypatch, ((r > 30) & (r < 36)).astype(float), n_boot=10)
    # short thin arms: few outline pixels, sides too short to fit, the least-squares fallback
    thin = drawn_spiral(25.0, half_width=0.04, r_in=20.0, r_out=30.0)
    check(monkeypatch, thin, min_arm_pixels=3, min_theta_span=1.0, n_boot=50)


def test_arms_joined_by_a_ring_and_broken_by_a_gap(monkeypatch):
    rows, cols = np.indices((N, N)).astype(float)
    joined = drawn_spiral(20.0, r_in=12.0)
    joined[(np.hypot(rows - CENTRE, cols - CENTRE) >= 9.0) & (np.hypot(rows - CENTRE, cols - CENTRE) <= 13.0)] = 1
    assert any("went round" in n for n in check(monkeypatch, joined, n_boot=30).notes)
    broken = drawn_spiral(15.0, q=0.6, disk_pa=70.0, half_width=0.2)
    broken[np.abs(np.hypot(rows - CENTRE, cols - CENTRE) - 30) < 2.5] = 0.0
    check(monkeypatch, broken, disk_axis_ratio=0.6, disk_position_angle=70.0, n_boot=30)


def test_one_draw_of_all_resamples_is_the_same_random_stream_as_one_draw_each():
    for k in range(1, 9):  # fit_arm's 8 blocks: 1 to 8 of them hold pixels
        a, b = np.random.default_rng(k), np.random.default_rng(k)
        each = np.array([a.integers(0, k, k) for _ in range(200)])
        assert np.array_equal(each, b.integers(0, k, (200, k))) and a.random() == b.random()


def band_points(rng, pitch, n=300, noise=0.01, outliers=0):
    """Outline-like points of a band in the log-polar plane: (theta, ln r, weights, edge)."""
    b = math.tan(math.radians(pitch))
    ln_r = rng.uniform(1.5, 4.0, n)
    theta = -ln_r / b + rng.choice([-0.15, 0.15], n) + rng.normal(0, noise, n)
    theta[:outliers] += rng.uniform(-0.3, 0.3, outliers)
    edge = rng.random(n) < 0.7
    return theta, ln_r, rng.uniform(0.2, 1.0, n), edge


@pytest.mark.parametrize("pitch", [5.0, 18.0, -27.0, 60.0, -85.0])
def test_the_compiled_side_fit_equals_the_plain_one(pitch):
    rng = np.random.default_rng(int(pitch) + 100)
    for outliers in (0, 40):
        theta, ln_r, w, edge = band_points(rng, pitch, outliers=outliers)
        fast, pure = spiral._sides_fit(theta, ln_r, w, edge), spiral._sides_fit_py(theta, ln_r, w, edge)
        assert fast[0] == pytest.approx(pure[0], abs=TOL) and np.allclose(fast[1], pure[1], atol=TOL)
        start = (pure[0] + 3.0, pure[1] + 0.05)
        fast = spiral._sides_fit(theta, ln_r, w, edge, start=start, n_iter=2)
        pure = spiral._sides_fit_py(theta, ln_r, w, edge, start=start, n_iter=2)
        assert fast[0] == pytest.approx(pure[0], abs=TOL) and np.allclose(fast[1], pure[1], atol=TOL)
    few = np.zeros(len(theta), bool)
    few[:9] = True  # under 10 outline points: the start is kept
    assert spiral._sides_fit(theta, ln_r, w, few)[0] == spiral._sides_fit_py(theta, ln_r, w, few)[0]


def test_the_compiled_side_trimming_equals_the_plain_one():
    rng = np.random.default_rng(11)
    for n in (4, 5, 8, 40, 400):
        t = rng.uniform(0, 2, n)
        points = np.column_stack([t, 0.3 * t + rng.normal(0, 0.02, n)])
        points[: n // 5, 1] += rng.uniform(-0.5, 0.5, n // 5)
        scale = rng.uniform(0.01, 0.05, n)
        pure = spiral._side_pixels(points, scale)
        keep, ok = spiral._side_pixels_nb(points[:, 0].copy(), points[:, 1].copy(), scale, 4)
        assert ok == (pure is not None)
        if ok:
            assert np.array_equal(keep, pure)


def test_the_compiled_unwrapping_equals_the_plain_one(monkeypatch):
    # an arm crossing the +-180 deg cut of arctan2
    image = drawn_spiral(20.0, n_arms=1, half_width=0.3)
    rows, cols = np.nonzero(image)
    theta = np.arctan2(CENTRE - rows, cols - CENTRE)
    fast = spiral.unwrap_region(theta, rows, cols, image.shape)
    with monkeypatch.context() as m:
        m.setattr(spiral, "_COMPILED", False)
        pure = spiral.unwrap_region(theta, rows, cols, image.shape)
    assert np.any(np.abs(fast - theta) > np.pi)  # some pixels moved by a turn
    assert np.allclose(fast, pure, atol=TOL, rtol=0)
