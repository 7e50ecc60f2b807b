"""Bar measurements: the study's recipe, units, deprojection, uncertainty (Django-free)."""
import json

import numpy as np
import pytest
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM

from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalcore.measure.agreement import measured_value
from evalcore.measure.bar import BarMeasurement, measure_bar
from evalcore.measure.cosmology import CosmologyParams

PIXEL_SCALE = 0.099  # arcsec / px, GZ3D
REDSHIFT = 0.05


def expected_kpc(length_px, z=REDSHIFT, h0=67.8, om0=0.308):
    """Independent route: angular-diameter distance times the angle in radians."""
    d_a = FlatLambdaCDM(H0=h0, Om0=om0).angular_diameter_distance(z).to_value(u.kpc)
    return d_a * (length_px * PIXEL_SCALE * u.arcsec).to_value(u.rad)


def rotated_bar(shape, length, width, pa_deg, centre=None):
    """Pixels whose centres lie in a rectangle whose long side points pa_deg east of north (row 0 = north,
    east = left, so north = -row and east = -col)."""
    rows, cols = np.indices(shape).astype(float)
    c_row, c_col = centre if centre else ((shape[0] - 1) / 2, (shape[1] - 1) / 2)
    north, east = -(rows - c_row), -(cols - c_col)
    pa = np.radians(pa_deg)
    along = north * np.cos(pa) + east * np.sin(pa)
    across = -north * np.sin(pa) + east * np.cos(pa)
    return ((np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)).astype(float)


def test_drawn_rectangle_gives_its_length_in_px_arcsec_and_kpc():
    mask = np.zeros((64, 64))
    mask[12:52, 28:36] = 1.0  # 40 px north-south, 8 px east-west
    m = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT)
    assert m.measured and m.reason is None
    assert m.length_px == pytest.approx(40.0) and m.width_px == pytest.approx(8.0)
    assert m.axis_ratio == pytest.approx(0.2)
    assert m.position_angle == pytest.approx(0.0, abs=1e-9) or m.position_angle == pytest.approx(180.0)
    assert (m.centre_row, m.centre_col) == pytest.approx((31.5, 31.5))
    assert m.length_arcsec == pytest.approx(40 * PIXEL_SCALE)
    assert m.length_kpc == pytest.approx(expected_kpc(40), rel=1e-9)
    assert m.width_kpc == pytest.approx(expected_kpc(8), rel=1e-9)
    # The study's code divided arcsec by 117 instead of 206.265 (arcsec per rad / 1000): 1.76x too long.
    assert m.length_kpc < 0.6 * expected_kpc(40) * 206.265 / 117
    assert m.length_px_err == 0.0  # a sharp, binary bar looks the same at every threshold


def test_deprojection_stretches_the_minor_axis_component_only():
    mask = np.zeros((64, 64))
    mask[12:52, 28:36] = 1.0  # along north-south
    along_minor = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT,
                              disk_axis_ratio=0.5, disk_position_angle=90.0)  # disk major axis east-west
    along_major = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT,
                              disk_axis_ratio=0.5, disk_position_angle=0.0)
    assert along_minor.length_kpc == pytest.approx(expected_kpc(40), rel=1e-9)
    assert along_minor.deprojected_length_px == pytest.approx(80.0)
    assert along_minor.deprojected_length_kpc == pytest.approx(expected_kpc(80), rel=1e-9)
    assert along_major.deprojected_length_kpc == pytest.approx(expected_kpc(40), rel=1e-9)


def test_bar_drawn_in_an_inclined_disk_is_recovered_face_on():
    # A 48 px bar in the disk plane, 60 deg from the major axis, seen on a disk b/a = 0.5 at PA 20 deg.
    true_len, alpha, q, disk_pa = 48.0, np.radians(60.0), 0.5, 20.0
    major, minor = true_len * np.cos(alpha), true_len * np.sin(alpha) * q
    sky_len = np.hypot(major, minor)
    sky_pa = disk_pa + np.degrees(np.arctan2(minor, major))
    mask = rotated_bar((72, 72), sky_len, 5.0, sky_pa)
    m = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT, disk_axis_ratio=q,
                    disk_position_angle=disk_pa)
    assert m.position_angle == pytest.approx(sky_pa, abs=2.0)
    assert m.length_px == pytest.approx(sky_len, abs=1.5)  # pixelised ends
    assert m.length_kpc == pytest.approx(expected_kpc(sky_len), rel=0.05)
    assert m.deprojected_length_px == pytest.approx(true_len, rel=0.05)
    assert m.deprojected_length_kpc == pytest.approx(expected_kpc(true_len), rel=0.05)


def test_position_angle_is_east_of_north_with_east_on_the_left():
    diagonal = np.zeros((40, 40))
    for i in range(8, 32):  # from lower left to upper right: towards north (up) and west (right)
        diagonal[39 - i, i - 1:i + 2] = 1.0
    assert measure_bar(diagonal).position_angle == pytest.approx(135.0, abs=2.0)
    east_west = np.zeros((40, 40))
    east_west[18:22, 5:35] = 1.0
    assert measure_bar(east_west).position_angle == pytest.approx(90.0, abs=1e-6)


def test_missing_redshift_gives_arcsec_only_with_a_reason():
    mask = rotated_bar((48, 48), 30, 6, 45)
    m = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=None, disk_axis_ratio=0.7, disk_position_angle=10)
    assert m.measured and m.length_arcsec == pytest.approx(m.length_px * PIXEL_SCALE)
    assert m.deprojected_length_arcsec is not None
    assert m.length_kpc is None and m.deprojected_length_kpc is None
    assert any("no redshift" in n for n in m.notes)
    negative = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=-0.1)
    assert negative.length_kpc is None and any("not positive" in n for n in negative.notes)
    no_scale = measure_bar(mask, redshift=REDSHIFT)
    assert no_scale.length_arcsec is None and any("no pixel scale" in n for n in no_scale.notes)


def test_several_regions_or_an_empty_mask_give_no_measurement_with_a_reason():
    two = np.zeros((40, 40))
    two[5:10, 5:20] = 1.0
    two[25:30, 5:20] = 1.0
    m = measure_bar(two, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT)
    assert not m.measured and m.length_px is None
    assert "2 separate regions" in m.reason and "80th percentile" in m.reason
    empty = measure_bar(np.zeros((20, 20)))
    assert not empty.measured and "empty" in empty.reason


def test_threshold_uncertainty_is_wider_for_a_fuzzy_bar():
    rows, cols = np.indices((64, 64)).astype(float)
    rho = np.hypot((rows - 31.5) / 24, (cols - 31.5) / 5)  # elliptical bar, 48 x 10 px
    # Fractions fall from 1 at the centre to 0 at the edge over `soft` of the radius: volunteers disagree
    # about where a fuzzy bar ends.
    results = [measure_bar(np.clip((1 - rho) / soft, 0, 1)) for soft in (0.01, 0.5, 1.0)]
    errs = [m.length_px_err for m in results]
    assert errs[0] == 0.0
    assert errs[0] < errs[1] < errs[2] and errs[2] > 3.0
    cone = results[2]
    assert cone.length_px_min < cone.length_px_max
    assert cone.length_px_err == pytest.approx((cone.length_px_max - cone.length_px_min) / 2)
    assert cone.percentiles_used == [70.0, 75.0, 80.0, 85.0, 90.0]
    # Higher thresholds keep a shorter core of a bar that fades outwards.
    cone_map = np.clip(1 - rho, 0, 1)
    lengths = [measure_bar(cone_map, percentile=p, spread_percentiles=()).length_px for p in (70, 80, 90)]
    assert lengths[0] > lengths[1] > lengths[2]


def test_cosmology_is_configurable():
    mask = np.zeros((64, 64))
    mask[12:52, 28:36] = 1.0
    m = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=0.1, cosmology=CosmologyParams(H0=70.0, Om0=0.3))
    assert m.length_kpc == pytest.approx(expected_kpc(40, z=0.1, h0=70.0, om0=0.3), rel=1e-9)
    assert m.cosmology == {"model": "FlatLambdaCDM", "H0": 70.0, "Om0": 0.3}
    with pytest.raises(ValueError, match="H0 must be a positive"):
        CosmologyParams(H0=-1)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 4, 4)), "2-D"),
    (np.full((4, 4), np.nan), "NaN"),
    (np.full((4, 4), 2.0), r"\[0, 1\]"),
])
def test_bad_maps_are_refused_with_a_specific_message(bad, message):
    with pytest.raises(ValueError, match=message):
        measure_bar(bad)


def test_bad_disk_or_pixel_scale_is_refused():
    mask = rotated_bar((32, 32), 20, 4, 0)
    with pytest.raises(ValueError, match="axis ratio"):
        measure_bar(mask, disk_axis_ratio=1.5, disk_position_angle=0)
    with pytest.raises(ValueError, match="pixel scale"):
        measure_bar(mask, pixel_scale=0)


def test_result_serialises_to_plain_json_and_back():
    m = measure_bar(rotated_bar((48, 48), 30, 6, 30), pixel_scale=PIXEL_SCALE, redshift=REDSHIFT,
                    disk_axis_ratio=0.8, disk_position_angle=100)
    data = json.loads(json.dumps(m.to_dict()))
    assert data["code_version"] == MEASUREMENT_CODE_VERSION
    assert BarMeasurement.from_dict(data) == m


def test_a_dict_from_another_code_version_still_loads():
    m = measure_bar(rotated_bar((48, 48), 30, 6, 30), pixel_scale=PIXEL_SCALE)
    data = m.to_dict()
    data["field_from_the_future"] = 1.0
    del data["width_px_err"]
    loaded = BarMeasurement.from_dict(data)
    assert loaded.length_px == m.length_px and loaded.width_px_err is None


# --- the half-maximum profile length ----------------------------------------------------------------------
def test_profile_length_of_a_drawn_rectangle_in_px_kpc_and_face_on():
    mask = np.zeros((64, 64))
    mask[12:52, 28:36] = 1.0  # 40 px north-south
    m = measure_bar(mask, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT, disk_axis_ratio=0.5,
                    disk_position_angle=90.0)
    assert m.profile_reason is None
    # a binary edge lies somewhere between two pixel centres: the 0.4-0.6 levels move it by 0.1 px each end
    assert m.profile_length_px == pytest.approx(40.0) and m.profile_length_px_err == pytest.approx(0.2)
    assert m.profile_position_angle == pytest.approx(0.0, abs=1e-9) or m.profile_position_angle == pytest.approx(180.0)
    assert m.profile_length_kpc == pytest.approx(expected_kpc(40), rel=1e-9)
    assert m.profile_deprojected_length_px == pytest.approx(80.0)  # along the disk's minor axis
    assert m.profile_deprojected_length_kpc == pytest.approx(expected_kpc(80), rel=1e-9)


def test_profile_length_of_a_crowd_is_the_median_drawn_length():
    # 15 volunteers box a 50 px bar at PA 30 deg with lengths scattered by 20%: at each point of the axis
    # the fraction is the share of boxes reaching past it, so it falls through one half at the median box.
    rng = np.random.default_rng(4)
    lengths = 50.0 * np.exp(rng.normal(0, 0.2, 15))
    crowd = sum(rotated_bar((96, 96), length, 9.0, 30.0) for length in lengths) / len(lengths)
    m = measure_bar(crowd, pixel_scale=PIXEL_SCALE, redshift=REDSHIFT)
    assert m.profile_length_px == pytest.approx(np.median(lengths), abs=1.5)
    assert m.profile_position_angle == pytest.approx(30.0, abs=2.0)
    assert m.profile_length_px_err > 1.0  # the crowd disagrees about the ends
    # The recipe keeps the top fifth of the non-zero fractions: the core most volunteers share.
    assert m.measured and m.length_px < np.median(lengths) - 5.0


def test_no_length_of_any_kind_where_the_recipe_finds_no_bar():
    """Two separate regions: no bar measured, so no half-maximum length either; both say why."""
    two = np.zeros((40, 40))
    two[5:10, 5:20] = 1.0
    two[25:30, 8:18] = 1.0
    m = measure_bar(two)
    assert not m.measured and "2 separate regions" in m.reason
    assert m.profile_length_px is None and m.profile_reason == f"no bar measured: {m.reason}"
    assert measured_value(m, "profile_length_px") == (None, None, m.reason)
    assert measured_value(m, "length_px") == (None, None, m.reason)
    empty = measure_bar(np.zeros((20, 20)))
    assert "empty" in empty.profile_reason and empty.profile_length_px is None
    assert measured_value(empty, "profile_length_px") == (None, None, empty.reason)
