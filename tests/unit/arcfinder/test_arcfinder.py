"""The arc finder, stage by stage, on small constructed images (Django-free)."""
from __future__ import annotations

import numpy as np
import pytest

from evalcore.arcfinder import STUDY_PARAMS, ArcFinderError, ArcFinderParams, run_arcfinder
from evalcore.arcfinder.clustering import cluster_pixels, similarity_edges
from evalcore.arcfinder.inputs import to_plane
from evalcore.arcfinder.logspiral import draw_log_spiral, fit_points, pitch_angle_deg, unwrap_from_gap
from evalcore.arcfinder.orientation import orientation_field, ridge_kernels
from evalcore.arcfinder.preprocess import clean_plane, gaussian_fit, semi_major_axis, standardise, to_input_frame


def galaxy(pitch: float, size: int = 128, amp: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An exponential disk with two log-spiral arms of ``pitch`` deg (+ = S-wise) and noise; and the arms
    (bool, where the arm profile is above 10 % of its peak)."""
    rows, cols = np.mgrid[0:size, 0:size]
    r = np.hypot(rows - (size - 1) / 2, cols - (size - 1) / 2)
    arms = draw_log_spiral((size, size), pitch, size * 0.06, size * 0.43, width=size / 40)
    disk = np.exp(-r / (size * 0.16))
    noise = 0.02 * np.random.default_rng(seed).standard_normal((size, size))
    return disk * (1 + amp * arms) + noise, arms > 0.1  # the arm out to ~2 sigma of its profile


# --- inputs ---------------------------------------------------------------------------------------
def test_inputs_single_band_gets_sparcfires_fits_conversion():
    """Black level at the 25 % quantile, asinh twice, the galaxy's brightest pixel at 1, 8-bit steps."""
    img, _ = galaxy(20.0, size=96)
    flux = 1000.0 + 400.0 * img  # a sky pedestal, as in SDSS frames
    plane, what = to_plane(flux, ArcFinderParams())
    assert "FITS conversion" in what
    assert plane.min() == 0 and plane.max() == 1
    assert 0.2 < np.mean(plane == 0) < 0.35
    assert np.allclose(plane * 255, np.round(plane * 255))
    order = np.argsort(flux.ravel())
    assert np.all(np.diff(plane.ravel()[order]) >= 0)  # monotonic in the flux


def test_inputs_cube_reads_the_chosen_band():
    rng = np.random.default_rng(1)
    cube = rng.normal(0, 0.01, (3, 40, 40))
    cube[1, 18:23, 18:23] += 100.0  # bright in r only
    plane, what = to_plane(cube, ArcFinderParams(band="r"))
    assert what.startswith("r band")
    assert plane[20, 20] == 1.0 and np.median(plane) < 0.5
    plane_g, _ = to_plane(cube, ArcFinderParams(band="g"))
    assert plane_g[20, 20] < 1.0


def test_inputs_rgb_luminance_and_channel():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 255
    lum, _ = to_plane(rgb, ArcFinderParams())
    assert np.allclose(lum, 0.299)
    red, what = to_plane(rgb, ArcFinderParams(rgb_mode="red"))
    assert np.allclose(red, 1.0) and "red" in what


@pytest.mark.parametrize("bad", [np.zeros(100), np.zeros((2, 50, 50)), np.zeros((50, 50, 7)),
                                 np.array([["a", "b"], ["c", "d"]])])
def test_inputs_refuse_other_shapes(bad):
    with pytest.raises(ArcFinderError):
        to_plane(bad, ArcFinderParams())


# --- preprocessing --------------------------------------------------------------------------------
def elliptical_gaussian(shape=(120, 130), centre=(58.0, 70.0), sigmas=(12.0, 6.0), angle_deg=30.0):
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    y, x = centre[0] - rows, cols - centre[1]
    phi = np.radians(angle_deg)
    a = x * np.cos(phi) + y * np.sin(phi)
    b = -x * np.sin(phi) + y * np.cos(phi)
    return np.exp(-0.5 * ((a / sigmas[0]) ** 2 + (b / sigmas[1]) ** 2))


def test_gaussian_fit_recovers_centre_axis_ratio_and_angle():
    img = elliptical_gaussian()
    fit = gaussian_fit(img)
    assert fit.converged
    assert abs(fit.centre_row - 58) < 0.2 and abs(fit.centre_col - 70) < 0.2
    std = standardise(img, ArcFinderParams(unsharp_amount=0))
    assert std.geometry.axis_ratio == pytest.approx(0.5, abs=0.03)
    assert std.geometry.major_axis_angle % 180 == pytest.approx(30, abs=2)
    # the crop is the 1e-9 likelihood contour of the fitted Gaussian, several of its sigmas out
    assert std.geometry.crop_radius == np.ceil(semi_major_axis(fit.covariance))
    assert std.geometry.crop_radius > 4 * np.sqrt(np.linalg.eigvalsh(fit.covariance)[1])


def test_a_bright_bar_and_bulge_do_not_set_the_crop_or_the_disk_shape():
    """A face-on disk whose arms reach 80 px, behind a bulge 60x and a bar 25x brighter than the disk's centre:
    SpArcFiRe's Gaussian fit takes the bar's shape (b/a ~0.34) and a crop holding a fifth of the arms; the
    galaxy's detected light gives the disk's shape back and a crop holding most of them."""
    from dataclasses import replace

    size = 200
    rows, cols = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    r = np.hypot(rows - c, cols - c)
    arms = draw_log_spiral((size, size), 20.0, 18, 80, width=5)
    bulge = 60 * np.exp(-0.5 * (r / 3) ** 2)
    bar = 25 * np.exp(-0.5 * (((cols - c) / 16) ** 2 + ((rows - c) / 3) ** 2))
    img = np.exp(-r / 25) * (1 + arms) + bulge + bar + np.random.default_rng(0).normal(0, 0.02, r.shape)
    fitted = run_arcfinder(img, replace(ArcFinderParams(), crop_to_detected_light=False))
    assert fitted.geometry.axis_ratio < 0.5 and fitted.geometry.share_inside(arms > 0.1) < 0.3
    res = run_arcfinder(img)
    assert res.geometry.axis_ratio > 0.8 and res.geometry.share_inside(arms > 0.1) > 0.65
    assert res.chirality == "S" and res.pitch_angle == pytest.approx(20.0, abs=4)
    assert any("detected light" in w for w in res.warnings)


def test_deprojection_makes_the_ellipse_round_on_the_grid():
    img = elliptical_gaussian() + 0.01
    std = standardise(img, ArcFinderParams())
    evals = np.linalg.eigvalsh(gaussian_fit(std.plain).covariance)
    assert np.sqrt(evals[0] / evals[1]) > 0.93
    assert std.image.min() >= 0 and std.image.max() <= 1


def test_reprojection_maps_the_grid_centre_to_the_galaxy_centre():
    img = elliptical_gaussian() + 0.01
    std = standardise(img, ArcFinderParams())
    labels = np.zeros((256, 256), np.int32)
    labels[120:136, 120:136] = 7
    back = to_input_frame(labels, std.geometry, img.shape)
    rows, cols = np.nonzero(back == 7)
    assert abs(rows.mean() - 58) < 1 and abs(cols.mean() - 70) < 1
    assert set(np.unique(back)) == {0, 7}


def test_clean_plane_fills_nans_and_keeps_the_scale():
    img = 0.8 * elliptical_gaussian()
    img[5:9, 5:9] = np.nan
    out = clean_plane(img, ArcFinderParams())
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() == pytest.approx(0.8, abs=0.01)


# --- orientation field -----------------------------------------------------------------------------
def test_ridge_kernels_are_unit_norm_with_sparcfires_positive_mean():
    k = ridge_kernels()
    assert k.shape == (9, 11, 11)
    assert np.allclose(np.linalg.norm(k.reshape(9, -1), axis=1), 1)
    assert np.all(k.sum(axis=(1, 2)) > 0.1)  # SpArcFiRe does not subtract the mean


@pytest.mark.parametrize("angle", [0.0, 30.0, 75.0, 120.0])
def test_orientation_follows_a_straight_ridge(angle):
    n = 96
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    y, x = (n - 1) / 2 - rows, cols - (n - 1) / 2
    phi = np.radians(angle)
    across = -x * np.sin(phi) + y * np.cos(phi)
    img = np.exp(-0.5 * (across / 2.0) ** 2)
    strength, theta = orientation_field(img)
    on = (np.abs(across) < 1) & (np.hypot(x, y) < 25)
    diff = np.degrees(np.angle(np.exp(2j * (theta[on] - phi)))) / 2
    assert np.median(np.abs(diff)) < 3
    assert np.median(strength[on]) > 5 * np.median(strength[np.abs(across) > 15])


# --- log-spiral fits --------------------------------------------------------------------------------
def test_unwrap_cuts_at_the_largest_gap_even_across_zero():
    theta = np.mod(np.linspace(-0.5, 1.0, 50), 2 * np.pi)
    rel, start = unwrap_from_gap(theta)
    assert start == pytest.approx(2 * np.pi - 0.5)
    assert rel.max() == pytest.approx(1.5)


@pytest.mark.parametrize("pitch", [-35.0, -12.0, 15.0, 28.0])
def test_fit_recovers_pitch_of_exact_points(pitch):
    k = -np.tan(np.radians(pitch))
    t = np.linspace(0, 4.0, 300) + 1.0
    r = 20 * np.exp(k * (t - 1.0))
    a, kk, err, _, extent = fit_points(r * np.cos(t), r * np.sin(t), np.ones_like(t))
    assert pitch_angle_deg(kk) == pytest.approx(pitch, abs=0.01)
    assert err < 1e-6 and extent == pytest.approx(4.0)


# --- similarity and clustering ----------------------------------------------------------------------
def test_similarity_cut_and_order():
    strength = np.ones((8, 8))
    theta = np.zeros((8, 8))
    theta[:, 4:] = np.pi / 2  # perpendicular halves: no similarity across the border
    a, b, s = similarity_edges(strength, theta, 0.15)
    assert np.all(np.diff(s) <= 0) and s.min() >= 0.15
    assert not np.any((a % 8 < 4) & (b % 8 >= 4))


def test_clusters_lie_on_the_arms_and_the_secondary_merge_joins_each_arm():
    """As in SpArcFiRe, the signed similarity breaks an arm where its ridge turns through the vertical;
    the secondary merge puts the pieces of one log spiral back together."""
    img, arms = galaxy(20.0, size=256)
    std = standardise(clean_plane(img, STUDY_PARAMS), STUDY_PARAMS)
    strength, theta = orientation_field(std.image)
    roots = cluster_pixels(strength, theta, std.plain, std.grid_centre, 0.15, 25, 2.5, valid=std.plain > 0)
    ids, counts = np.unique(roots, return_counts=True)
    big = ids[counts >= 1000]
    assert 2 <= len(big) <= 6
    on_arms = arms.ravel()
    for root in big:
        assert np.mean(on_arms[roots == root]) > 0.6
    res = run_arcfinder(img, STUDY_PARAMS)
    assert len(res.arcs) == 2
    assert all(arc["num_pixels"] > 2500 for arc in res.arcs)
    assert (res.spiral_mask & arms).sum() > 0.8 * res.spiral_mask.sum()


# --- the whole method -------------------------------------------------------------------------------
@pytest.mark.parametrize("pitch", [-25.0, 12.0, 20.0])
def test_drawn_log_spiral_pitch_and_chirality_recovered(pitch):
    img, arms = galaxy(pitch, size=128)
    res = run_arcfinder(img, STUDY_PARAMS)
    assert res.chirality == ("S" if pitch > 0 else "Z")
    assert res.pitch_angle == pytest.approx(pitch, abs=3.0)
    assert res.spiral_mask.shape == img.shape
    overlap = (res.spiral_mask & arms).sum() / res.spiral_mask.sum()
    assert overlap > 0.6
    assert res.arcs[0]["alen_rank"] == 1 and res.arcs[0]["arc_length"] >= res.arcs[-1]["arc_length"]


def test_default_parameters_with_standardisation_find_the_arms():
    img, arms = galaxy(18.0, size=160)
    res = run_arcfinder(img)
    assert res.chirality == "S"
    assert abs(res.pitch_angle - 18.0) < 6
    assert (res.spiral_mask & arms).sum() > 0.5 * res.spiral_mask.sum()
    assert res.geometry.axis_ratio > 0.8  # face-on disk


def test_mirrored_galaxy_flips_chirality_and_mask():
    img, _ = galaxy(22.0, size=128)
    res = run_arcfinder(img, STUDY_PARAMS)
    mirrored = run_arcfinder(img[:, ::-1].copy(), STUDY_PARAMS)
    assert {res.chirality, mirrored.chirality} == {"S", "Z"}
    assert res.pitch_angle == pytest.approx(-mirrored.pitch_angle, abs=2.0)
    same = (res.spiral_mask[:, ::-1] & mirrored.spiral_mask).sum()
    assert same > 0.8 * res.spiral_mask.sum()


def test_details_are_json_serialisable_and_params_round_trip():
    import json

    img, _ = galaxy(20.0, size=96)
    res = run_arcfinder(img, STUDY_PARAMS)
    text = json.dumps(res.details())
    assert '"arcs"' in text and res.details()["code_version"]
    params = ArcFinderParams(stop_threshold=0.2)
    assert ArcFinderParams.from_dict(params.as_dict()) == params
    with pytest.raises(ValueError, match="unknown arc finder parameter"):
        ArcFinderParams.from_dict({"stop_thres": 0.2})


# --- bad inputs ------------------------------------------------------------------------------------
def test_blank_image_is_a_specific_error():
    with pytest.raises(ArcFinderError, match="blank"):
        run_arcfinder(np.full((64, 64), 3.0))


def test_all_nan_image_is_a_specific_error():
    with pytest.raises(ArcFinderError, match="no finite pixel"):
        run_arcfinder(np.full((64, 64), np.nan))


def test_tiny_image_is_a_specific_error():
    with pytest.raises(ArcFinderError, match="at least 16 px"):
        run_arcfinder(np.random.default_rng(0).random((10, 40)))


def test_too_large_image_is_a_specific_error():
    with pytest.raises(ArcFinderError, match="more than"):
        run_arcfinder(np.random.default_rng(0).random((120, 120)), ArcFinderParams(max_pixels=100 * 100))


def test_non_square_image_gives_masks_in_its_own_frame():
    img, arms = galaxy(20.0, size=128)
    wide = np.pad(img, ((0, 0), (30, 50)), mode="constant", constant_values=0.0)
    res = run_arcfinder(wide)
    assert res.labels.shape == res.spiral_mask.shape == wide.shape
    assert res.chirality == "S"
    assert not res.spiral_mask[:, :30].any() or res.spiral_mask[:, 30:158].sum() > 5 * res.spiral_mask[:, :30].sum()


def test_pure_noise_and_partial_nans_do_not_crash():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((64, 80))
    res = run_arcfinder(noise)
    assert res.spiral_mask.shape == (64, 80)
    assert len(res.arcs) == res.labels_grid.max()
    img, _ = galaxy(20.0, size=96)
    img[:10, :] = np.nan
    res = run_arcfinder(img, STUDY_PARAMS)
    assert res.chirality == "S"
