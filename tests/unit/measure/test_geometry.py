"""Rectangles, deprojection and disk orientation on the image grid (Django-free)."""
import numpy as np
import pytest

from evalcore.measure.cosmology import kpc_per_arcsec, redshift_problem
from evalcore.measure.disk import disk_orientation
from evalcore.measure.geometry import deprojected_length, min_area_rectangle, pixel_corner_points


def test_minimum_area_rectangle_of_a_rotated_rectangle_is_that_rectangle():
    angle = np.radians(25)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    rng = np.random.default_rng(0)
    s, t = rng.uniform(-15, 15, 300), rng.uniform(-5, 5, 300)
    corners = [(sx * 15, tx * 5) for sx in (-1, 1) for tx in (-1, 1)]
    s, t = np.append(s, [c[0] for c in corners]), np.append(t, [c[1] for c in corners])
    pts = np.outer(s, along) + np.outer(t, across) + [40.0, 50.0]  # (row, col)
    rect = min_area_rectangle(pts)
    assert rect.length == pytest.approx(30.0) and rect.width == pytest.approx(10.0)
    assert (rect.centre_row, rect.centre_col) == pytest.approx((40.0, 50.0))
    # (d_row, d_col) = (cos 25, sin 25) points south and west (east is on the left), so the undirected
    # line runs 25 deg east of north.
    assert rect.position_angle == pytest.approx(25.0)


def test_pixel_squares_not_centres_set_the_extent():
    region = np.zeros((10, 10), bool)
    region[2:5, 3:9] = True  # 3 x 6 pixels
    rect = min_area_rectangle(pixel_corner_points(region))
    assert (rect.length, rect.width) == pytest.approx((6.0, 3.0))
    with pytest.raises(ValueError, match="collinear"):
        min_area_rectangle(np.array([[0, 0], [1, 1], [2, 2]], float))


def test_deprojected_length_of_segments_at_any_angle():
    assert deprojected_length(10.0, 30.0, 0.5, 30.0) == pytest.approx(10.0)  # along the major axis
    assert deprojected_length(10.0, 120.0, 0.5, 30.0) == pytest.approx(20.0)  # along the minor axis
    # 45 deg from the major axis: components 10/sqrt2 kept and 10/sqrt2 doubled.
    assert deprojected_length(10.0, 75.0, 0.5, 30.0) == pytest.approx(np.hypot(10 / 2**0.5, 20 / 2**0.5))


def test_redshift_problems_are_named():
    assert "no redshift" in redshift_problem(None)
    assert "not a number" in redshift_problem("abc")
    assert redshift_problem(0.03) is None
    with pytest.raises(ValueError, match="not positive"):
        kpc_per_arcsec(0.0)


def test_disk_orientation_of_an_inclined_exponential_disk():
    n, q, pa = 101, 0.45, 60.0
    rows, cols = np.indices((n, n)).astype(float)
    north, east = -(rows - 50), -(cols - 50)
    p = np.radians(pa)
    a = north * np.cos(p) + east * np.sin(p)
    b = -north * np.sin(p) + east * np.cos(p)
    image = 100 * np.exp(-np.hypot(a, b / q) / 8.0) + 1.0  # + sky
    fit = disk_orientation(np.stack([image] * 3, axis=2))
    assert fit.axis_ratio == pytest.approx(q, abs=0.03)
    assert fit.position_angle == pytest.approx(pa, abs=1.5)
    with pytest.raises(ValueError, match="no source"):
        disk_orientation(np.ones((20, 20)))
