import io

import numpy as np
import pytest
from astropy.io import fits

from evalcore.formats import banddata, pngcodec
from evalcore.pixels import rendering
from evalcore.pixels.rendering import RenderError


def ramp(h=8, w=10):
    return np.arange(h * w, dtype=np.float32).reshape(h, w)


def test_clip_limits_are_percentiles_of_finite_pixels():
    data = np.array([[0.0, 1.0, 2.0, np.nan], [3.0, 4.0, np.inf, 100.0]])
    lo, hi = rendering.clip_limits(data, 0, 100)
    assert (lo, hi) == (0.0, 100.0)
    lo, hi = rendering.clip_limits(data, 0, 50)
    assert lo == 0.0 and hi == pytest.approx(2.5)


def test_flat_plane_gets_a_unit_range_and_renders_black():
    flat = np.full((4, 4), 7.0)
    assert rendering.clip_limits(flat) == (7.0, 8.0)
    assert rendering.stretch(flat, kind="linear").max() == 0.0


@pytest.mark.parametrize("low, high", [(50, 50), (-1, 90), (10, 101), (90, 10)])
def test_bad_clip_percentiles_are_refused(low, high):
    with pytest.raises(RenderError, match="percentiles"):
        rendering.clip_limits(ramp(), low, high)


def test_linear_stretch_maps_clip_range_to_unit_interval():
    out = rendering.stretch(ramp(), kind="linear", low_pct=0, high_pct=100)
    assert out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.allclose(out.ravel(), np.linspace(0, 1, 80), atol=1e-6)


def test_clipping_saturates_the_tails():
    out = rendering.stretch(ramp(), kind="linear", low_pct=10, high_pct=90)
    flat = out.ravel()
    assert np.all(flat[:8] == 0.0) and np.all(flat[-8:] == 1.0)
    assert 0.0 < flat[40] < 1.0


def test_asinh_and_log_lift_faint_pixels_and_keep_order():
    data = ramp()
    lin = rendering.stretch(data, kind="linear", low_pct=0, high_pct=100)
    for kind in ("asinh", "log"):
        out = rendering.stretch(data, kind=kind, low_pct=0, high_pct=100)
        assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
        assert np.all(np.diff(out.ravel()) > 0), kind  # monotonic
        mid = data.size // 4
        assert out.ravel()[mid] > lin.ravel()[mid] + 0.2, kind  # faint pixels brighter than linear
    asinh = rendering.stretch(data, kind="asinh", low_pct=0, high_pct=100).ravel()
    # asinh(x / 0.1) / asinh(10) at x = 0.5
    x = (40 - 0) / 79
    assert asinh[40] == pytest.approx(np.arcsinh(x / 0.1) / np.arcsinh(10), rel=1e-5)


def test_stretch_zeroes_non_finite_pixels_and_refuses_unknown_kind():
    data = ramp()
    data[0, 0] = np.nan
    data[1, 1] = np.inf
    out = rendering.stretch(data, kind="log")
    assert out[0, 0] == 0.0 and out[1, 1] == 0.0 and np.all(np.isfinite(out))
    with pytest.raises(RenderError, match="unknown stretch 'sqrt'"):
        rendering.stretch(data, kind="sqrt")
    with pytest.raises(RenderError, match="2-D"):
        rendering.stretch(np.zeros((2, 2, 2)))


def test_luminance_uses_rec709_weights():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1] = 200
    lum = rendering.luminance(rgb)
    assert lum[0].tolist() == pytest.approx([0.2126 * 255, 0.7152 * 255, 0.0722 * 255], rel=1e-5)
    assert lum[1].tolist() == pytest.approx([200.0] * 3, rel=1e-5)
    with pytest.raises(RenderError):
        rendering.luminance(np.zeros((2, 2, 5)))


def fits_bytes(data, **header):
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key] = value
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def tan_header(cd22):
    return {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 5.0, "CRPIX2": 4.0, "CRVAL1": 150.0,
            "CRVAL2": 2.0, "CD1_1": -7e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": cd22}


def test_band_cube_with_north_up_fits_wcs_is_flipped_to_row0_north():
    cube = np.stack([ramp(), ramp() * 2, ramp() * 3])
    raw = fits_bytes(cube, BAND0="g", BAND1="r", BAND2="z", **tan_header(+7e-5))
    bands = banddata.read_band_data(raw, shape=(8, 10))
    assert bands.names == ("g", "r", "z") and bands.flipped
    assert np.array_equal(bands.plane("r"), (ramp() * 2)[::-1])
    assert np.array_equal(bands.plane(2), (ramp() * 3)[::-1])
    assert np.allclose(bands.plane("mean"), (ramp() * 2)[::-1])


def test_band_data_already_row0_north_or_without_wcs_keep_their_rows():
    raw = fits_bytes(ramp(), **tan_header(-7e-5))
    bands = banddata.read_band_data(raw, shape=(8, 10))
    assert not bands.flipped and bands.names == ("band 0",)
    assert np.array_equal(bands.plane(), ramp())
    plain = banddata.read_band_data(fits_bytes(ramp()), shape=(8, 10))
    assert not plain.flipped and np.array_equal(plain.plane(0), ramp())


def test_mean_of_bands_ignores_non_finite_pixels():
    cube = np.stack([ramp(), ramp() + 2])
    cube[0, 0, 0] = np.nan
    bands = banddata.read_band_data(fits_bytes(cube), shape=(8, 10))
    assert bands.plane()[0, 0] == 2.0
    assert bands.plane()[0, 1] == 2.0


@pytest.mark.parametrize("payload, message", [
    (b"not a fits file at all", "not readable FITS"),
    (fits_bytes(np.zeros((6, 6), np.float32)), "6x6 px but the image is 10x8 px"),
    (fits_bytes(np.zeros((8, 10, 3), np.uint8)), "RGB pixels"),
])
def test_unusable_band_data_are_refused_with_the_reason(payload, message):
    with pytest.raises(banddata.BandDataError, match=message):
        banddata.read_band_data(payload, shape=(8, 10))


def test_unknown_band_is_refused():
    bands = banddata.read_band_data(fits_bytes(np.stack([ramp(), ramp()]), BAND0="g", BAND1="r"), shape=(8, 10))
    with pytest.raises(banddata.BandDataError, match="unknown band 'i'"):
        bands.plane("i")
    with pytest.raises(banddata.BandDataError, match="out of range"):
        bands.plane(5)


def test_render_image_uses_bands_when_given_else_luminance():
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[:, 5:] = 255  # right half white
    from_rgb = rendering.render_image(rgb=rgb, kind="linear", low_pct=0, high_pct=100)
    assert from_rgb.dtype == np.uint8 and from_rgb.shape == (8, 10)
    assert from_rgb[:, :5].max() == 0 and from_rgb[:, 5:].min() == 255
    bands = banddata.read_band_data(fits_bytes(ramp()), shape=(8, 10))
    from_bands = rendering.render_image(rgb=rgb, bands=bands, kind="linear", low_pct=0, high_pct=100)
    assert from_bands[0, 0] == 0 and from_bands[-1, -1] == 255
    assert np.all(np.diff(from_bands.ravel().astype(int)) >= 0)


def test_colormap_lut_is_a_perceptual_ramp():
    for name in rendering.COLORMAPS:
        lut = rendering.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        luma = rendering.luminance(lut[np.newaxis])[0]
        # perceptually uniform maps brighten steadily from one end to the other
        assert np.all(np.diff(luma[::16]) > 0), name
    viridis = rendering.colormap_lut("viridis")
    assert tuple(viridis[0]) == (68, 1, 84) and tuple(viridis[-1]) == (253, 231, 37)
    with pytest.raises(RenderError, match="unknown colormap 'jet'"):
        rendering.colormap_lut("jet")
    stops = rendering.colormap_stops("viridis", 3)
    assert stops[0] == "#440154" and stops[-1] == "#fde725" and len(stops) == 3


def test_overlay_is_clear_at_zero_and_coloured_by_fraction():
    f = np.array([[0.0, 1 / 15, 0.5], [1.0, np.nan, 7 / 15]], np.float32)
    out = rendering.overlay_rgba(f, cmap="cividis")
    lut = rendering.colormap_lut("cividis")
    assert out.shape == (2, 3, 4)
    assert out[..., 3].tolist() == [[0, 255, 255], [255, 0, 255]]
    assert tuple(out[0, 2, :3]) == tuple(lut[128])
    assert tuple(out[1, 0, :3]) == tuple(lut[255])
    assert tuple(out[0, 1, :3]) == tuple(lut[17])


def test_downscale_keeps_aspect_and_exact_values_when_not_smooth():
    mask = np.zeros((40, 20), np.uint8)
    mask[:, 10:] = 7
    small = rendering.downscale(mask, 10, smooth=False)
    assert small.shape == (10, 5)
    assert set(np.unique(small)) == {0, 7}
    assert rendering.downscale(mask, 100) is mask
    with pytest.raises(RenderError):
        rendering.downscale(mask, 0)


def test_png_round_trip_and_refusals():
    rgba = rendering.overlay_rgba(np.eye(5, dtype=np.float32))
    back = pngcodec.decode(pngcodec.encode(rgba))
    assert np.array_equal(back, rgba)
    grey = rendering.to_uint8(np.linspace(0, 1, 12).reshape(3, 4))
    assert np.array_equal(pngcodec.decode(pngcodec.encode(grey)), grey)
    with pytest.raises(ValueError, match="uint8"):
        pngcodec.encode(np.zeros((3, 3), np.float32))
