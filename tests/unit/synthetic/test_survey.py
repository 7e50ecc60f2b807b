"""The synthetic survey: determinism, truth that agrees with the image, the crowd and its statistics."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from evalcore.formats import gz3d, truthfile
from evalcore.synthetic import crowdstats, population, renderer, survey, volunteers

SEED = 7


def settings(tmp_path, n=3, size=64, seed=SEED, crowd="default", name="out"):
    return survey.SurveySettings(n=n, seed=seed, size=size, out=tmp_path / name, crowd=crowd)


def all_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def params_of(seed, index, size):
    s = survey.SurveySettings(n=1, seed=seed, size=size, out=Path("."))
    return population.draw_galaxy(np.random.default_rng([seed, index, 0]), seed=seed, index=index,
                                  field_arcsec=s.field_arcsec)


def indices_where(seed, size, want, count, limit=400):
    found = [i for i in range(limit) if want(params_of(seed, i, size))][:count]
    assert len(found) == count, "the population should contain such galaxies"
    return found


# --- determinism --------------------------------------------------------------------------------------
def test_same_seed_gives_identical_files_whatever_the_number_of_processes(tmp_path):
    one = settings(tmp_path, name="a")
    two = settings(tmp_path, name="b")
    survey.make_survey(one, workers=1)
    survey.make_survey(two, workers=2)
    a, b = all_bytes(one.out), all_bytes(two.out)
    assert len([k for k in a if k.startswith("gz3d/")]) == 3 and len([k for k in a if k.startswith("cutouts/")]) == 3
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]


def test_another_seed_gives_other_galaxies(tmp_path):
    survey.make_survey(settings(tmp_path, n=2, name="a"), workers=1)
    survey.make_survey(settings(tmp_path, n=2, seed=SEED + 1, name="b"), workers=1)
    a = (tmp_path / "a" / "cutouts.csv").read_text().splitlines()[1:]
    b = (tmp_path / "b" / "cutouts.csv").read_text().splitlines()[1:]
    assert not set(a) & set(b)


def test_sky_positions_and_names_are_distinct():
    positions = {population.sky_position(SEED, i) for i in range(3000)}
    assert len(positions) == 3000
    names = {survey.iau_name(*population.sky_position(SEED, i)) for i in range(3000)}
    assert len(names) == 3000 and all(n.startswith("SYN J") for n in names)
    decs = np.array([d for _, d in positions])
    assert decs.min() < -60 and decs.max() > 60  # spread over the sky


# --- the files ----------------------------------------------------------------------------------------
def test_files_have_the_release_layout_the_cutout_layout_and_the_same_truth(tmp_path):
    s = settings(tmp_path, n=2, size=96)
    summary = survey.make_survey(s, workers=1)
    for path in sorted((s.out / "gz3d").glob("*.fits.gz")):
        with fits.open(path) as hdul:
            assert len(hdul) == 13 and [h.name for h in hdul[11:]] == ["TRUTH_MASKS", "TRUTH_PARAMS"]
            assert hdul[0].data.shape == (96, 96, 3) and hdul[0].data.dtype == np.uint8
        f = gz3d.read_gz3d(path)
        assert f.metadata["IAUNAME"].startswith("SYN J") and f.metadata["sample"] == "synthetic"
        assert abs(f.pixel_scale - population.GZ3D_FIELD_ARCSEC / 96) < 1e-6
        assert f.truth.spiral.shape == (96, 96)
        assert f.spiral or f.bar
        for task in (f.spiral, f.bar):
            assert len(task) in (0, volunteers.DEFAULT_VOLUNTEERS)
        mid = f.metadata["MANGAID"]
        with fits.open(s.out / "cutouts" / f"{mid}.fits") as hdul:
            cube = hdul[0].data
            assert cube.shape == (3, 96, 96) and cube.dtype.kind == "f" and cube.dtype.itemsize == 4
            assert hdul[0].header["BANDS"] == "grz" and hdul[0].header["PIXSCALE"] == 0.262
            w = WCS(hdul[0].header).celestial
            assert abs(survey.renderer.Grid.from_wcs(w, (96, 96), f.metadata["ra"], f.metadata["dec"]).pixel_scale
                       - 0.262) < 1e-6
            truth = truthfile.read_truth(hdul)
        assert truth.params == f.truth.params
        assert truth.params["synthetic"] is True and truth.params["redshift"] > 0
    stats = json.loads((s.out / "survey.json").read_text())
    assert stats == json.loads(json.dumps(summary))
    rows = (s.out / "cutouts.csv").read_text().splitlines()
    assert rows[0] == ",".join(survey.CATALOGUE_COLUMNS) and len(rows) == 3


# --- truth agrees with the image ----------------------------------------------------------------------
def _cutout(s, index):
    survey.make_galaxy(s, index)
    mid = survey.manga_id(s.seed, index)
    with fits.open(s.out / "cutouts" / f"{mid}.fits") as hdul:
        return hdul[0].data.astype(np.float64), truthfile.read_truth(hdul), WCS(hdul[0].header).celestial


def test_arm_band_flux_is_higher_on_true_arm_pixels_than_between_arms(tmp_path):
    size = 128
    s = settings(tmp_path, size=size)
    (s.out / "gz3d").mkdir(parents=True)
    (s.out / "cutouts").mkdir()
    chosen = indices_where(SEED, size, lambda p: p.morphology in ("spiral", "barred spiral")
                           and p.axis_ratio > 0.6, 4)
    per_galaxy = []
    for index in chosen:
        cube, truth, wcs = _cutout(s, index)
        p = params_of(SEED, index, size)
        grid = renderer.Grid.from_wcs(wcs, (size, size), p.ra, p.dec)
        _, _, xg, yg = renderer.sky_to_disk(p, *grid.sky())
        r = np.hypot(xg, yg)
        arm = truth.spiral.astype(bool)
        assert arm.sum() > 30
        g = cube[0]
        ratios = []
        lo, hi = np.percentile(r[arm], [10, 90])
        for r0, r1 in zip(np.linspace(lo, hi, 5)[:-1], np.linspace(lo, hi, 5)[1:]):
            ring = (r >= r0) & (r < r1) & ~truth.bar.astype(bool)
            on, off = ring & arm, ring & ~arm
            if on.sum() > 5 and off.sum() > 5:
                ratios.append(g[on].mean() / g[off].mean())
        assert ratios and np.median(ratios) > 1.05, ratios
        per_galaxy.append(np.median(ratios))
    assert np.median(per_galaxy) > 1.5, per_galaxy


def _orientation_pa(weights, wcs, ra, dec, size):
    """Position angle (deg east of north, mod 180) of the long axis of a weighted pixel distribution."""
    y, x = np.indices(weights.shape)
    w = np.clip(weights, 0, None)
    xm, ym = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
    cxx = (w * (x - xm) ** 2).sum()
    cyy = (w * (y - ym) ** 2).sum()
    cxy = (w * (x - xm) * (y - ym)).sum()
    angle = 0.5 * math.atan2(2 * cxy, cxx - cyy)
    grid = renderer.Grid.from_wcs(wcs, (size, size), ra, dec)
    east, north = grid.cd @ np.array([math.cos(angle), math.sin(angle)])
    return math.degrees(math.atan2(east, north)) % 180


def _pa_difference(a, b):
    d = abs(a - b) % 180
    return min(d, 180 - d)


def test_bar_long_axis_lies_where_the_truth_says(tmp_path):
    size = 128
    s = settings(tmp_path, size=size)
    (s.out / "gz3d").mkdir(parents=True)
    (s.out / "cutouts").mkdir()
    chosen = indices_where(SEED, size, lambda p: p.bar is not None and p.axis_ratio > 0.8
                           and p.bar.half_length > 2.5, 3)
    for index in chosen:
        cube, truth, wcs = _cutout(s, index)
        p = params_of(SEED, index, size)
        true_pa = truth.params["bar_position_angle_deg"]
        # the truth mask is elongated along the true bar
        assert _pa_difference(_orientation_pa(truth.bar.astype(float), wcs, p.ra, p.dec, size), true_pa) < 6
        # so is the light of the image inside the bar's radius, once the round bulge and disk are removed
        grid = renderer.Grid.from_wcs(wcs, (size, size), p.ra, p.dec)
        east, north = grid.sky()
        radius = np.hypot(east, north)
        half = truth.params["bar_length_arcsec"] / 2
        r_band = cube[1]
        inside = (radius < 0.9 * half) & (radius > 0.25 * half)
        # subtract the azimuthal mean in rings: what remains is the non-axisymmetric light (the bar)
        excess = np.zeros_like(r_band)
        edges = np.linspace(0.25 * half, 0.9 * half, 6)
        for r0, r1 in zip(edges[:-1], edges[1:]):
            ring = (radius >= r0) & (radius < r1)
            excess[ring] = r_band[ring] - r_band[ring].mean()
        measured = _orientation_pa(np.where(inside, excess, 0), wcs, p.ra, p.dec, size)
        assert _pa_difference(measured, true_pa) < 15, (index, measured, true_pa)
        assert truth.params["images"]["survey_cutout"]["bar_length_px"] == pytest.approx(
            truth.params["bar_length_arcsec"] / 0.262, rel=1e-3)


# --- volunteers and their statistics ------------------------------------------------------------------
def test_iou_by_threshold_counts_pixels_exactly():
    truth = np.zeros((4, 4), np.uint8)
    truth[:2, :2] = 1  # 4 true pixels
    counts = np.zeros((4, 4), np.int64)
    counts[:2, :2] = 3
    counts[0, 2] = 1  # one extra pixel at k = 1 only
    ious = crowdstats.iou_by_threshold(counts, 3, truth)
    assert ious.tolist() == [4 / 5, 1.0, 1.0]
    counts[1, 1] = 2
    assert crowdstats.iou_by_threshold(counts, 3, truth).tolist() == [4 / 5, 1.0, 3 / 4]


def _crowd(index, crowd, size=128, n=15):
    p = params_of(SEED, index, size)
    s = settings(Path("."), size=size)
    header = gz3d.make_wcs_header(p.ra, p.dec, (size, size), s.gz3d_pixel_scale)
    grid = renderer.Grid.from_wcs(WCS(header), (size, size), p.ra, p.dec)
    tasks = volunteers.Tasks(spiral=True, bar=True, gz_total=40, gz_spiral_votes=30, gz_bar_votes=20)
    rng = np.random.default_rng([SEED, index, 2])
    spiral, bar = volunteers.draw_crowd(p, grid, tasks, rng, crowd=volunteers.get_crowd(crowd), n_volunteers=n)
    return p, grid, spiral, bar


def test_volunteers_draw_imperfect_polygons_inside_the_frame():
    index = indices_where(SEED, 128, lambda p: p.bar is not None and p.arms.m >= 2, 1)[0]
    p, grid, spiral, bar = _crowd(index, "default", n=15)
    assert len(spiral) == len(bar) == 15
    assert len({c.classification_id for c in spiral}) == 15
    assert [c.classification_id for c in spiral] == [c.classification_id for c in bar]
    drawn = [poly for c in spiral for poly in c.polygons]
    assert drawn and all(len(poly) >= 4 for poly in drawn)
    for poly in drawn:
        kept, dropped = gz3d.clean_polygons([poly], (128, 128))
        assert kept and not dropped
    counts = gz3d.volunteer_counts(spiral, (128, 128))
    assert counts.max() <= 15


def test_only_volunteers_asked_draw_and_n_is_configurable():
    p = params_of(SEED, 0, 128)
    grid = renderer.Grid.from_wcs(WCS(gz3d.make_wcs_header(p.ra, p.dec, (128, 128), 0.4)), (128, 128), p.ra, p.dec)
    tasks = volunteers.Tasks(spiral=True, bar=False, gz_total=40, gz_spiral_votes=30, gz_bar_votes=2)
    spiral, bar = volunteers.draw_crowd(p, grid, tasks, np.random.default_rng(0), crowd=volunteers.CROWDS["default"],
                                        n_volunteers=7)
    assert len(spiral) == 7 and bar == []
    with pytest.raises(ValueError, match="volunteers per galaxy must be 1..60"):
        volunteers.draw_crowd(p, grid, tasks, np.random.default_rng(0), crowd=volunteers.CROWDS["default"],
                              n_volunteers=0)
    with pytest.raises(ValueError, match="unknown crowd 'wise'"):
        volunteers.get_crowd("wise")


def test_biased_crowd_draws_bars_too_long_and_the_default_crowd_does_not():
    chosen = indices_where(SEED, 128, lambda p: p.bar is not None, 6)
    ratios = {"default": [], "biased": []}
    for crowd in ratios:
        for index in chosen:
            p, grid, _, bar = _crowd(index, crowd)
            true_px = 2 * volunteers.bar_box(p, grid)["half_length"]
            for c in bar:
                for poly in c.polygons:
                    pts = np.asarray(poly)
                    ratios[crowd].append(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[1] - pts[2]))
                                         / true_px)
    assert 0.85 < np.median(ratios["default"]) < 1.15
    assert np.median(ratios["biased"]) > 1.3


def test_crowd_statistics_are_produced_and_clearly_below_one(tmp_path):
    s = settings(tmp_path, n=10, size=96)
    stats = survey.make_survey(s, workers=1)["crowd_statistics"]
    spiral = stats["spiral"]
    assert spiral["galaxies_scored"] >= 5
    assert 0.2 < spiral["mean_iou_at_half"] < 0.9
    assert spiral["mean_iou_at_half"] <= spiral["mean_iou_at_best_threshold"] < 0.95
    assert 0 < spiral["best_threshold"] <= 1
    assert len(spiral["mean_iou_by_threshold"]) == 15
    assert 0 < spiral["blank_drawing_fraction"] < 0.6
    lines = survey.crowd_summary_lines(stats)
    assert any(line.strip().startswith("spiral: mean IoU") for line in lines)


@pytest.mark.slow
def test_biased_crowd_consensus_is_worse_on_the_same_galaxies(tmp_path):
    default = survey.make_survey(settings(tmp_path, n=8, size=96, name="d"), workers=1)["crowd_statistics"]
    biased = survey.make_survey(settings(tmp_path, n=8, size=96, crowd="biased", name="b"),
                                workers=1)["crowd_statistics"]
    # the same galaxies, images and tasks: only the drawings differ
    assert (tmp_path / "d" / "cutouts.csv").read_bytes() == (tmp_path / "b" / "cutouts.csv").read_bytes()
    for s in ("spiral", "bar"):
        assert biased[s]["galaxies_asked"] == default[s]["galaxies_asked"]
    assert biased["spiral"]["mean_iou_at_best_threshold"] < default["spiral"]["mean_iou_at_best_threshold"] - 0.1


# --- bad settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"n": 0}, "--n must be a positive number of galaxies, got 0"),
    ({"n": -3}, "--n must be a positive number of galaxies, got -3"),
    ({"size": 32}, "--size must be 64..2048 px"),
    ({"crowd": "wise"}, "unknown crowd 'wise'"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, change, message):
    s = survey.SurveySettings(**{"n": 2, "seed": 1, "size": 64, "out": tmp_path / "out", **change})
    with pytest.raises(ValueError, match=message):
        survey.make_survey(s, workers=1)
    assert not (tmp_path / "out").exists()


def test_an_output_path_through_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    s = survey.SurveySettings(n=1, seed=1, size=64, out=tmp_path / "afile" / "out")
    with pytest.raises(survey.SurveyError, match="is a file, not a folder"):
        survey.make_survey(s, workers=1)
