import numpy as np
import pytest

from evalcore.formats import coords, gz3d
from evalcore.sky import reproject

RA, DEC = 150.0, 2.0


def wcs(shape, scale, ra=RA, dec=DEC):
    return gz3d.celestial_wcs(gz3d.make_wcs_header(ra, dec, shape, scale))


def test_header_text_round_trip_and_missing_wcs_is_none():
    w = wcs((60, 60), 0.099)
    again = coords.wcs_from_text(w.to_header().tostring(sep="\n"))
    assert np.allclose(again.wcs.crval, w.wcs.crval) and np.allclose(again.wcs.crpix, w.wcs.crpix)
    assert coords.wcs_from_text("") is None
    assert coords.wcs_from_text("COMMENT no coordinates here") is None
    with pytest.raises(coords.WCSError):
        coords.wcs_from_text("CTYPE1  = 'RA---TAN'\nCTYPE2  = 'RA---TAN'")  # two longitudes


def test_pixels_move_to_the_same_sky_position():
    source, target = wcs((525, 525), 0.099), wcs((101, 101), 0.262, ra=RA + 1 / 3600)
    xy = np.array([[262.0, 262.0], [100.0, 400.0]])
    moved = reproject.transform_pixels(xy, source, target)
    assert np.allclose(source.pixel_to_world_values(xy[:, 0], xy[:, 1]),
                       target.pixel_to_world_values(moved[:, 0], moved[:, 1]), atol=1e-10, rtol=0)
    # 0.099 / 0.262 of the offset from the centre, shifted by the 1" (in RA) the target is moved east
    dx = (100 - 261.5) * 0.099 / 0.262
    assert moved[1, 0] == pytest.approx(49.5 + dx + np.cos(np.radians(DEC)) / 0.262, abs=0.01)


def test_counts_are_re_rasterised_per_classification_on_the_target_grid():
    source, target = wcs((100, 100), 0.1), wcs((50, 50), 0.2)  # same centre, pixels twice as large
    big = [[20, 20], [60, 20], [60, 60], [20, 60]]
    inner = [[30, 30], [40, 30], [40, 40], [30, 40]]
    counts = reproject.reproject_classification_counts([[big, inner], [inner], []], source, target, (50, 50))
    # crpix (50, 50) and (25, 25) 1-based: source px x maps to (x - 49) / 2 + 24
    assert counts[19, 19] == 2 and counts[12, 12] == 1 and counts[30, 30] == 0
    assert counts.max() == 2  # the first classification counts once where its polygons overlap


def test_nearest_resampling_keeps_values_and_fills_outside():
    source, target = wcs((20, 20), 0.1), wcs((30, 30), 0.1)  # same scale, target 5 px larger each side
    array = np.arange(400, dtype=np.int64).reshape(20, 20)
    out = reproject.resample_nearest(array, source, target, (30, 30))
    assert out.dtype == np.int64
    assert np.array_equal(out[5:25, 5:25], array)
    assert out[:5].sum() == 0 and out[:, 25:].sum() == 0
