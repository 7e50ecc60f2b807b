"""Survey styles: GalSim image formation beside the classic renderer (determinism, bands, pixel scales,
PSF, truth that follows the structure, structural variety)."""
from pathlib import Path

import galsim
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from evalcore.formats import gz3d, truthfile
from evalcore.synthetic import galsim_renderer, population, renderer, styles, survey

SEED = 11
GALSIM_STYLES = [name for name, st in styles.STYLES.items() if st.engine == "galsim"]


def settings(tmp_path, style, n=2, size=64, seed=SEED, name="out"):
    return survey.SurveySettings(n=n, seed=seed, size=size, out=tmp_path / name, style=style)


def all_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def prepared(tmp_path, style, size=128, name="out"):
    s = settings(tmp_path, style, size=size, name=name)
    (s.out / "gz3d").mkdir(parents=True)
    (s.out / "cutouts").mkdir()
    return s


def cutout(s, index):
    survey.make_galaxy(s, index)
    with fits.open(s.out / "cutouts" / f"{survey.manga_id(s.seed, index)}.fits") as hdul:
        return (hdul[0].data.astype(np.float64), dict(hdul[0].header), truthfile.read_truth(hdul),
                WCS(hdul[0].header).celestial)


# --- styles and mixes ---------------------------------------------------------------------------------
def test_style_specs_parse_and_unknown_ones_are_refused():
    assert styles.parse("galsim-grz") == {"galsim-grz": 1.0}
    assert styles.parse("classic:1,galsim-grey:3") == {"classic": 1.0, "galsim-grey": 3.0}
    assert set(styles.parse(styles.DEFAULT_STYLE)) == {"classic", "galsim-grz", "galsim-grey"}
    assert styles.HELD_OUT_STYLE not in styles.parse(styles.DEFAULT_STYLE)
    for bad, message in (("oil", "unknown style 'oil'"), ("classic:x", "not a number"), ("classic:0", "> 0"),
                         ("", "no style given")):
        with pytest.raises(styles.StyleError, match=message):
            styles.parse(bad)
    with pytest.raises(survey.SurveyError, match="--style: unknown style"):
        survey.check_settings(survey.SurveySettings(n=1, seed=0, size=64, out=Path("/tmp/none"), style="oil"))


def test_a_mix_draws_each_galaxys_style_from_seed_and_index_in_proportion():
    drawn = [styles.style_for("classic:1,galsim-grz:3", 5, i).name for i in range(2000)]
    assert drawn == [styles.style_for("classic:1,galsim-grz:3", 5, i).name for i in range(2000)]
    assert 0.7 < drawn.count("galsim-grz") / 2000 < 0.8
    assert drawn != [styles.style_for("classic:1,galsim-grz:3", 6, i).name for i in range(2000)]


# --- determinism and files ----------------------------------------------------------------------------
def test_same_seed_gives_identical_files_in_every_style_whatever_the_processes(tmp_path):
    spec = ",".join(styles.STYLES)
    one, two = settings(tmp_path, spec, n=4, name="a"), settings(tmp_path, spec, n=4, name="b")
    summary = survey.make_survey(one, workers=1)
    survey.make_survey(two, workers=2)
    a, b = all_bytes(one.out), all_bytes(two.out)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]
    assert sum(summary["styles"].values()) == 4
    other = settings(tmp_path, spec, n=4, seed=SEED + 1, name="c")
    survey.make_survey(other, workers=1)
    c = all_bytes(other.out)
    assert all(a[k] != c.get(k) for k in a if k.startswith("cutouts/"))


@pytest.mark.parametrize("style", list(styles.STYLES))
def test_every_style_writes_its_declared_bands_and_pixel_scale(tmp_path, style):
    s = settings(tmp_path, style, n=3, size=64)
    survey.make_survey(s, workers=1)
    st = styles.STYLES[style]
    rows = (s.out / survey.CATALOGUE_NAME).read_text().splitlines()[1:]
    assert len(rows) == 3
    for path in sorted((s.out / "cutouts").glob("*.fits")):
        with fits.open(path) as hdul:
            data, header = hdul[0].data, hdul[0].header
            truth = truthfile.read_truth(hdul)
            wcs = WCS(header).celestial
        assert header["BANDS"] == "".join(st.bands)
        assert data.shape == (len(st.bands), 64, 64) and data.dtype.byteorder in (">", "|")
        scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))) * 3600
        assert scale == pytest.approx(header["PIXSCALE"], rel=1e-6)
        assert st.pixel_scale[0] - 1e-4 <= scale <= st.pixel_scale[1] + 1e-4
        assert truth.params["images"]["survey_cutout"]["pixel_scale_arcsec"] == pytest.approx(scale, rel=1e-5)
        assert truth.params.get("style", "classic") == style
        assert np.isfinite(data).all() and data.std() > 0
    for path in sorted((s.out / "gz3d").glob("*.fits.gz")):
        f = gz3d.read_gz3d(path)
        assert f.image.shape == (64, 64, 3) and f.truth.spiral.shape == (64, 64)
        if st.subject_rgb == "grey":  # a single band is shown grey, apart from the magenta IFU hexagon
            grey = (f.image[..., 0] == f.image[..., 1]) & (f.image[..., 1] == f.image[..., 2])
            assert grey.mean() > 0.9


def test_galsim_pixel_scales_span_the_style_range(tmp_path):
    scales = [survey.galaxy_params(settings(tmp_path, "galsim-grz"), i)[1] for i in range(60)]
    assert min(scales) < 0.15 and max(scales) > 0.4


# --- image formation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["moffat", "kolmogorov"])
def test_the_psf_fwhm_is_honoured_in_the_image(kind):
    """A bright foreground star alone on the frame has the FWHM the seeing asks for."""
    p = population.draw_galaxy(np.random.default_rng(1), seed=1, index=0, field_arcsec=40)
    p.disk_i0 = p.bulge_ie = 1e-9
    p.arms.amplitudes = [0.0] * p.arms.m
    p.arms.knots = np.zeros((0, 4))
    p.bar, p.neighbour, p.ring, p.dust = None, None, None, None
    p.stars = [population.Star(east=3.0, north=-2.0, flux_r=2e4, g_r=0.6, r_z=0.4)]
    wcs = survey.cutout_wcs(p.ra, p.dec, 96, 0.2)
    grid = renderer.Grid.from_wcs(wcs, (96, 96), p.ra, p.dec)
    seeing = galsim_renderer.Seeing(psf=kind, fwhm=1.1, beta=3.0, e1=0.0, e2=0.0, depth=0.2, gain=1e6)
    out = galsim_renderer.render(p, grid, ("r",), seeing, np.random.default_rng(0))
    x, y = grid.to_pixels(3.0, -2.0)
    stamp = out.bands[0][int(round(y)) - 20:int(round(y)) + 21, int(round(x)) - 20:int(round(x)) + 21]
    measured = galsim.ImageF(np.ascontiguousarray(stamp), scale=0.2).calculateFWHM()
    assert measured == pytest.approx(1.1, rel=0.1)
    assert stamp.sum() == pytest.approx(2e4, rel=0.05)


def test_disk_and_bulge_carry_the_light_the_structure_says():
    """GalSim's analytic disk and bulge hold the flux of the renderer's surface-brightness model."""
    size = 128
    for index in range(4):
        p = population.draw_galaxy(np.random.default_rng([3, index, 0]), seed=3, index=index, field_arcsec=40)
        p.stars, p.neighbour = [], None
        wcs = survey.cutout_wcs(p.ra, p.dec, size, 0.3)
        grid = renderer.Grid.from_wcs(wcs, (size, size), p.ra, p.dec)
        seeing = galsim_renderer.Seeing(psf="moffat", fwhm=1.0, beta=3.5, e1=0.0, e2=0.0, depth=0.01, gain=1e7)
        out = galsim_renderer.render(p, grid, ("r",), seeing, np.random.default_rng(0))
        model = renderer.components(p, grid).total.sum() * 0.3**2
        assert out.bands[0].sum() == pytest.approx(model, rel=0.08)


@pytest.mark.parametrize("style", GALSIM_STYLES)
def test_arm_light_lies_in_the_truth_mask(tmp_path, style):
    """Arm pixels of the truth are brighter than the pixels between the arms at the same radius (in the
    reddest band, where the arms' colour matters least)."""
    size = 128
    s = prepared(tmp_path, style, size)
    chosen = [i for i in range(80)
              if (lambda p: p.morphology in ("spiral", "barred spiral") and p.axis_ratio > 0.6 and p.dust is None)(
                  survey.galaxy_params(s, i)[2])][:4]
    assert len(chosen) == 4
    per_galaxy = []
    for index in chosen:
        cube, _, truth, wcs = cutout(s, index)
        p = survey.galaxy_params(s, index)[2]
        grid = renderer.Grid.from_wcs(wcs, (size, size), p.ra, p.dec)
        _, _, xg, yg = renderer.sky_to_disk(p, *grid.sky())
        r = np.hypot(xg, yg)
        arm = truth.spiral.astype(bool)
        assert arm.sum() > 20
        band = cube[-1]
        ratios = []
        lo, hi = np.percentile(r[arm], [10, 90])
        for r0, r1 in zip(np.linspace(lo, hi, 5)[:-1], np.linspace(lo, hi, 5)[1:]):
            ring = (r >= r0) & (r < r1) & ~truth.bar.astype(bool)
            on, off = ring & arm, ring & ~arm
            if on.sum() > 5 and off.sum() > 5:
                ratios.append(band[on].mean() / band[off].mean())
        per_galaxy.append(np.median(ratios))
    assert min(per_galaxy) > 1.0 and np.median(per_galaxy) > 1.3, per_galaxy


def test_truth_comes_from_the_structure_not_from_the_image(tmp_path):
    """The same galaxy on the same grid has the same truth in the classic and the GalSim rendering."""
    p = population.draw_galaxy(np.random.default_rng([2, 4, 0]), seed=2, index=4, field_arcsec=40)
    population.vary_structure(p, np.random.default_rng(9))
    wcs = survey.cutout_wcs(p.ra, p.dec, 128, 0.3)
    grid = renderer.Grid.from_wcs(wcs, (128, 128), p.ra, p.dec)
    classic = renderer.render(p, grid, renderer.Conditions(psf_fwhm=1.2, sky_sigma=renderer.LEGACY, gain=4000.0),
                              np.random.default_rng(0))
    seeing = galsim_renderer.Seeing(psf="kolmogorov", fwhm=1.8, beta=3.0, e1=0.05, e2=0.0, depth=3.0, gain=900.0)
    styled = galsim_renderer.render(p, grid, ("g", "r", "i"), seeing, np.random.default_rng(1))
    assert (classic.spiral == styled.spiral).all() and (classic.bar == styled.bar).all()


# --- structural variety -------------------------------------------------------------------------------
def _varied(n=300):
    out = []
    for i in range(n):
        p = population.draw_galaxy(np.random.default_rng([4, i, 0]), seed=4, index=i, field_arcsec=50)
        out.append(population.vary_structure(p, np.random.default_rng([4, i, 5])))
    return out


def test_variety_covers_arm_families_rings_dust_and_arm_colours():
    galaxies = _varied()
    families = {p.arms.family for p in galaxies if p.arms.m}
    assert families == {"logarithmic", "varying pitch", "flocculent"}
    assert {p.arms.m for p in galaxies} == {0, 1, 2, 3, 4}
    assert 0.15 < np.mean([p.ring is not None for p in galaxies]) < 0.35
    assert 0.2 < np.mean([p.dust is not None for p in galaxies]) < 0.4
    shift = [p.colours["arms"][0] - p.colours["disk"][0] for p in galaxies]
    assert np.mean(np.isclose(shift, 0)) > 0.2 and min(shift) < -0.3 and max(shift) > 0.05
    assert max(p.inclination for p in galaxies) > 60  # up to the population's b/a 0.42 limit
    assert min(p.axis_ratio for p in galaxies) >= 0.42


def test_a_pitch_that_changes_with_radius_winds_as_its_local_pitch_says():
    p = next(p for p in _varied() if p.arms.pitch_slope)
    radii = np.geomspace(p.arms.start * 0.5, max(p.arms.ends) * 1.2, 400)
    theta = renderer.arm_azimuth(p, 0, radii) - sum(  # without the irregular wiggles
        a * np.sin(f * np.log(radii / p.arms.start) + ph) for a, f, ph in p.arms.wiggles[0])
    dtheta = np.gradient(theta, np.log(radii))
    expected = p.arms.winding / np.tan(np.radians(renderer.pitch_at(p, radii)))
    assert np.allclose(dtheta[2:-2], expected[2:-2], rtol=0.02)
    pitches = renderer.pitch_at(p, radii)
    assert pitches.min() >= population.PITCH_RANGE[0] and pitches.max() <= population.PITCH_RANGE[1]
    assert pitches.max() - pitches.min() > 1


def test_a_ring_is_neither_spiral_nor_bar_truth():
    p = next(p for p in _varied() if p.ring is not None and p.bar is None)
    p.arms.amplitudes = [0.0] * p.arms.m
    wcs = survey.cutout_wcs(p.ra, p.dec, 128, 0.4)
    grid = renderer.Grid.from_wcs(wcs, (128, 128), p.ra, p.dec)
    comp = renderer.components(p, grid)
    assert comp.ring.max() > 0
    spiral, bar = renderer.truth_masks(comp)
    assert not spiral.any() and not bar.any()


def test_dust_lanes_darken_the_image_more_in_g_than_in_z():
    p = next(p for p in _varied() if p.dust is not None and p.bar is None)
    p.stars, p.neighbour = [], None
    wcs = survey.cutout_wcs(p.ra, p.dec, 128, 0.3)
    grid = renderer.Grid.from_wcs(wcs, (128, 128), p.ra, p.dec)
    seeing = galsim_renderer.Seeing(psf="moffat", fwhm=0.8, beta=3.5, e1=0.0, e2=0.0, depth=0.01, gain=1e7)
    dusty = galsim_renderer.render(p, grid, ("g", "z"), seeing, np.random.default_rng(0)).bands
    dust, p.dust = p.dust, None
    p.cache.clear()
    clean = galsim_renderer.render(p, grid, ("g", "z"), seeing, np.random.default_rng(0)).bands
    _, _, xg, yg = renderer.sky_to_disk(p, *grid.sky())
    p.dust = dust
    lane = renderer.dust_depth(p, xg, yg) > 0.5 * dust.tau_r
    assert lane.sum() > 10
    loss = 1 - dusty[:, lane].sum(axis=1) / clean[:, lane].sum(axis=1)
    assert loss[0] > loss[1] > 0.03, loss
