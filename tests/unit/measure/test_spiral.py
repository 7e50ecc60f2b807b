"""Spiral arms: pitch angle, arm count and chirality from drawn log spirals (Django-free)."""
import json

import numpy as np
import pytest
from spiral_drawings import CENTRE, N, drawn_outline, drawn_spiral

from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalcore.measure.spiral import SpiralMeasurement, measure_spiral


@pytest.mark.parametrize("pitch", [20.0, -20.0])
def test_log_spiral_on_an_inclined_disk_is_recovered_with_its_chirality(pitch):
    q, disk_pa = 0.55, 30.0
    res = measure_spiral(drawn_spiral(pitch, q=q, disk_pa=disk_pa), disk_axis_ratio=q,
                         disk_position_angle=disk_pa, n_boot=50)
    assert res.measured and res.n_arms == 2
    assert res.chirality == ("S" if pitch > 0 else "Z") and res.chirality_agreement == 1.0
    assert res.pitch == pytest.approx(pitch, abs=1.0)
    assert res.pitch_abs == pytest.approx(abs(pitch), abs=1.0)
    for arm in res.arms:
        assert arm.pitch == pytest.approx(pitch, abs=1.0)
        assert 0 <= arm.pitch_err < 2.0
        assert arm.theta_span > 200  # the arms wind most of a turn and cross the +-180 deg cut
        assert arm.r_start == pytest.approx(8.0, abs=1.5) and arm.r_end == pytest.approx(55.0, abs=1.5)


def test_three_arms_and_other_pitches():
    for pitch, arms in ((12.0, 2), (30.0, 3)):
        res = measure_spiral(drawn_spiral(pitch, n_arms=arms, q=0.7, disk_pa=120.0, half_width=0.15),
                             disk_axis_ratio=0.7, disk_position_angle=120.0, n_boot=30)
        assert res.n_arms == arms
        assert res.pitch == pytest.approx(pitch, abs=1.0)


def test_skipping_the_deprojection_is_flagged_by_the_fit():
    # Seen as if face-on, an inclined spiral is not a log spiral: its arms are no straight bands in the
    # log-polar plane, which the width and the bootstrap uncertainty show.
    image = drawn_spiral(20.0, q=0.5, disk_pa=0.0)
    right = measure_spiral(image, disk_axis_ratio=0.5, disk_position_angle=0.0, n_boot=20)
    face_on = measure_spiral(image, n_boot=20)
    assert any("face-on" in n for n in face_on.notes)
    assert abs(right.pitch - 20.0) < 1.0 and right.pitch_err < 0.5
    assert face_on.pitch_err > 10 * right.pitch_err and face_on.pitch_err > 1.0
    assert all(f.width_rms > 3 * r.width_rms for f, r in zip(face_on.arms, right.arms))


@pytest.mark.parametrize("ends,taper", [("square", False), ("square", True), ("round", True)])
@pytest.mark.parametrize("pitch", [12.0, -25.0])
def test_drawn_outlines_with_any_ends_are_recovered_on_an_inclined_disk(pitch, ends, taper):
    # Volunteers draw loops with ends across the arm, often narrowing: at the radii of an end only part
    # of the arm's cross-section is inside, so fitting angle on radius over all pixels reads such an arm
    # too open (these arms: 1.6-2.6 deg at 12 deg, 2.7-4.9 deg at 25 deg); the sides of the outline do not
    # depend on its ends.
    q, disk_pa = 0.6, 40.0
    image = drawn_outline(pitch, q=q, disk_pa=disk_pa, ends=ends, taper=taper, half_width=0.3, r_out=45.0)
    res = measure_spiral(image, disk_axis_ratio=q, disk_position_angle=disk_pa, n_boot=30)
    assert res.n_arms == 1 and res.chirality == ("S" if pitch > 0 else "Z")
    assert res.pitch == pytest.approx(pitch, abs=1.0)
    assert 0 < res.pitch_err < 2.5


def test_arms_widening_outwards_are_recovered():
    # Light above a threshold: symmetric in angle at every radius, wider outside (as synthetic truth masks).
    image = drawn_spiral(18.0, q=0.7, disk_pa=100.0, r_in=10.0, half_width=lambda r: 0.08 + 0.006 * r)
    res = measure_spiral(image, disk_axis_ratio=0.7, disk_position_angle=100.0, n_boot=30)
    assert res.n_arms == 2
    assert res.pitch == pytest.approx(18.0, abs=1.0)


def test_chirality_follows_the_displayed_winding():
    # One arm drawn directly in display terms: going outwards it turns clockwise on the screen.
    image = np.zeros((N, N))
    for t in np.linspace(0, 4.5, 2000):
        r, angle = 8 * np.exp(0.4 * t), -t  # clockwise on screen as r grows
        row, col = CENTRE - r * np.sin(angle), CENTRE + r * np.cos(angle)
        if 0 <= row < N and 0 <= col < N:
            image[int(round(row)) - 1:int(round(row)) + 2, int(round(col)) - 1:int(round(col)) + 2] = 1.0
    s_wise = measure_spiral(image, n_boot=20)
    assert s_wise.n_arms == 1 and s_wise.chirality == "S"
    assert s_wise.pitch == pytest.approx(np.degrees(np.arctan(0.4)), abs=1.5)
    mirrored = measure_spiral(image[:, ::-1], n_boot=20)  # a mirror image winds the other way
    assert mirrored.chirality == "Z" and mirrored.pitch == pytest.approx(-s_wise.pitch, abs=0.5)


def test_uncertainty_grows_with_ragged_arms():
    clean = drawn_spiral(20.0, half_width=0.2)
    rng = np.random.default_rng(3)
    ragged = clean * (rng.random(clean.shape) < 0.6)  # volunteers miss pixels at random
    ragged = np.maximum(ragged, drawn_spiral(20.0, half_width=0.08))  # keeping each arm connected
    ragged = ragged * rng.uniform(0.4, 1.0, clean.shape)
    r_clean = measure_spiral(clean, n_boot=100)
    r_ragged = measure_spiral(ragged, relative_threshold=0.01, n_boot=100)
    assert r_ragged.n_arms == 2
    assert r_ragged.pitch_err > r_clean.pitch_err
    assert abs(r_ragged.pitch - 20.0) < 1.0 + 3 * r_ragged.pitch_err


def test_rings_specks_and_empty_masks_are_explained():
    rows, cols = np.indices((N, N)).astype(float)
    r = np.hypot(rows - CENTRE, cols - CENTRE)
    ring = ((r > 30) & (r < 36)).astype(float)
    res = measure_spiral(ring, n_boot=10)
    assert not res.measured and "no arm" in res.reason
    assert res.rejected_regions[0]["reason"].startswith("goes round the centre")
    specks = np.zeros((N, N))
    specks[10:13, 10:13] = 1.0
    res = measure_spiral(specks)
    assert not res.measured and "smaller than 20 px" in res.rejected_regions[0]["reason"]
    empty = measure_spiral(np.zeros((N, N)))
    assert not empty.measured and "empty" in empty.reason


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="axis ratio"):
        measure_spiral(drawn_spiral(20.0), disk_axis_ratio=0.0, disk_position_angle=0.0)
    with pytest.raises(ValueError, match="centre"):
        measure_spiral(drawn_spiral(20.0), centre=(np.nan, 3.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        measure_spiral(drawn_spiral(20.0) * 5)


def test_result_serialises_to_plain_json_and_back():
    res = measure_spiral(drawn_spiral(-25.0, q=0.8, disk_pa=45.0), disk_axis_ratio=0.8,
                         disk_position_angle=45.0, n_boot=20)
    data = json.loads(json.dumps(res.to_dict()))
    assert data["code_version"] == MEASUREMENT_CODE_VERSION and len(data["arms"]) == 2
    assert SpiralMeasurement.from_dict(data) == res


def test_an_arm_broken_by_a_gap_is_still_one_arm():
    image = drawn_spiral(15.0, q=0.6, disk_pa=70.0, half_width=0.2)
    rows, cols = np.indices((N, N)).astype(float)
    image[np.abs(np.hypot(rows - CENTRE, cols - CENTRE) - 30) < 2.5] = 0.0  # a gap across both arms
    res = measure_spiral(image, disk_axis_ratio=0.6, disk_position_angle=70.0, n_boot=20)
    assert res.n_arms == 2 and all(a.n_pieces >= 2 for a in res.arms)  # the sky circle may cut twice
    assert res.pitch == pytest.approx(15.0, abs=1.0)
    four = measure_spiral(drawn_spiral(15.0, n_arms=4, half_width=0.1), n_boot=10)
    assert four.n_arms == 4 and all(a.n_pieces == 1 for a in four.arms)  # neighbouring arms stay apart


def test_arms_joined_by_an_inner_ring_are_separated_by_dropping_the_ring():
    image = drawn_spiral(20.0, q=0.7, disk_pa=10.0, r_in=12.0)
    rows, cols = np.indices((N, N)).astype(float)
    north, east = CENTRE - rows, CENTRE - cols
    pa = np.radians(10.0)
    a = north * np.cos(pa) + east * np.sin(pa)
    b = (-north * np.sin(pa) + east * np.cos(pa)) / 0.7
    image[(np.hypot(a, b) >= 9.0) & (np.hypot(a, b) <= 13.0)] = 1.0  # an inner ring touching both arms
    res = measure_spiral(image, disk_axis_ratio=0.7, disk_position_angle=10.0, n_boot=20)
    assert res.n_arms == 2 and res.pitch == pytest.approx(20.0, abs=1.5)
    assert any("went round the centre" in n for n in res.notes)
