"""Reading image files for import: FITS (one band, g,r,z cube), PNG, JPEG, and every refusal."""
import gzip
import io
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image as PILImage

from evalcore.formats import coords, imagefiles, truthfile
from evalcore.pixels import colour

LIMITS = {"max_pixels": 10_000, "max_bytes": 2_000_000}
SCALE = 0.262  # arcsec / px


def legacy_wcs(shape, ra=150.0, dec=2.0) -> WCS:
    """The Legacy Survey cutout convention: FITS y up = north, so CD2_2 > 0."""
    h, w = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(w + 1) / 2, (h + 1) / 2]
    wcs.wcs.cd = np.diag([-SCALE / 3600, SCALE / 3600])
    return wcs


def write_cube(path, cube, wcs=None, extra_hdus=(), bands="grz"):
    header = wcs.to_header() if wcs is not None else fits.Header()
    for i, b in enumerate(bands):
        header[f"BAND{i}"] = b
    fits.HDUList([fits.PrimaryHDU(cube, header), *extra_hdus]).writeto(path)
    return path


def test_grz_cube_becomes_legacy_rgb_with_north_on_row_zero(tmp_path):
    shape = (20, 30)
    cube = np.zeros((3, *shape), np.float32)
    cube[:, 17, 4] = 2.0  # FITS row 17 of 20: near the top of the sky picture (north)
    path = write_cube(tmp_path / "c.fits", cube, legacy_wcs(shape))
    data = imagefiles.read_image(path, **LIMITS)
    assert data.format == "fits" and data.flipped
    assert data.bands == "grz asinh (Legacy Survey)"
    assert data.rgb.shape == (20, 30, 3) and data.rgb.dtype == np.uint8
    np.testing.assert_array_equal(data.rgb, colour.grz_to_rgb(cube[:, ::-1, :]))
    brightest = np.unravel_index(np.argmax(data.rgb.sum(axis=2)), shape)
    assert brightest == (2, 4)  # 20 - 1 - 17
    # the stored WCS describes the flipped grid: that pixel is still at the same sky position
    sky_before = legacy_wcs(shape).pixel_to_world_values(4, 17)
    sky_after = data.wcs.pixel_to_world_values(4, 2)
    np.testing.assert_allclose(sky_after, sky_before, atol=1e-10)
    assert coords.north_is_up(data.wcs, shape)
    assert coords.pixel_scale_arcsec(data.wcs) == pytest.approx(SCALE)
    raw = fits.open(io.BytesIO(data.raw_fits))
    np.testing.assert_array_equal(raw[0].data, cube[:, ::-1, :])
    assert [raw[0].header[f"BAND{i}"] for i in range(3)] == ["g", "r", "z"]


def test_band_order_comes_from_the_header(tmp_path):
    cube = np.zeros((3, 8, 8), np.float32)
    cube[0] = 1.0  # the z band, per the header
    data = imagefiles.read_image(write_cube(tmp_path / "z.fits", cube, legacy_wcs((8, 8)), bands="zrg"), **LIMITS)
    assert data.bands == "zrg asinh (Legacy Survey)"
    red, green, blue = data.rgb[0, 0]
    assert red > green and red > blue


def test_gri_cube_becomes_an_sdss_lupton_composite(tmp_path):
    cube = np.zeros((3, 8, 8), np.float32)
    cube[2, 2, 2] = 1.0  # i only: red
    cube[0, 5, 5] = 1.0  # g only: blue
    data = imagefiles.read_image(write_cube(tmp_path / "gri.fits", cube, legacy_wcs((8, 8)), bands="gri"), **LIMITS)
    assert data.bands == "gri asinh Lupton (SDSS)"
    np.testing.assert_array_equal(data.rgb, colour.gri_to_rgb(cube[:, ::-1, :]))
    red, green, blue = (int(v) for v in data.rgb[8 - 1 - 2, 2])
    assert red > 0 and green == blue == 0
    red, green, blue = (int(v) for v in data.rgb[8 - 1 - 5, 5])
    assert blue > 0 and red == green == 0


def test_file_already_north_up_is_not_flipped(tmp_path):
    wcs = coords.north_up_wcs(150.0, 2.0, (8, 8), SCALE)
    cube = np.arange(3 * 64, dtype=np.float32).reshape(3, 8, 8) / 100
    data = imagefiles.read_image(write_cube(tmp_path / "n.fits", cube, wcs), **LIMITS)
    assert not data.flipped
    np.testing.assert_array_equal(data.rgb, colour.grz_to_rgb(cube))


def test_single_band_is_a_grey_asinh_stretch_and_truth_follows_the_flip(tmp_path):
    plane = np.zeros((12, 10), np.float32)
    plane[10, 3] = 50.0
    spiral = np.zeros((12, 10), np.uint8)
    spiral[10, 3] = 1
    bar = np.zeros_like(spiral)
    bar[5:7, 2:8] = 1
    header = fits.Header()
    header["FILTER"] = "r"
    hdus = [fits.PrimaryHDU(plane, header), *truthfile.truth_hdus(spiral, bar, {"arms": 2})]
    fits.HDUList(hdus).writeto(tmp_path / "r.fits")
    data = imagefiles.read_image(tmp_path / "r.fits", **LIMITS)
    assert data.wcs is None and data.flipped  # no WCS: the FITS convention (first row at the bottom)
    assert data.bands.startswith("r asinh")
    assert np.all(data.rgb[..., 0] == data.rgb[..., 1]) and np.all(data.rgb[..., 1] == data.rgb[..., 2])
    assert data.rgb[1, 3, 0] == 255 and data.rgb[0, 0, 0] == 0
    assert data.truth.spiral[1, 3] == 1 and data.truth.spiral.sum() == 1
    np.testing.assert_array_equal(data.truth.bar, bar[::-1])
    assert data.truth.params == {"arms": 2}


def test_gzipped_fits_reads_like_the_plain_file(tmp_path):
    cube = np.ones((3, 6, 6), np.float32) * 0.1
    plain = write_cube(tmp_path / "p.fits", cube, legacy_wcs((6, 6)))
    (tmp_path / "p.fits.gz").write_bytes(gzip.compress(plain.read_bytes()))
    a = imagefiles.read_image(plain, **LIMITS)
    b = imagefiles.read_image(tmp_path / "p.fits.gz", **LIMITS)
    np.testing.assert_array_equal(a.rgb, b.rgb)


def test_png_and_jpeg_keep_their_rows(tmp_path):
    rgb = np.zeros((16, 12, 3), np.uint8)
    rgb[:4, :, 0] = 255  # a red top band (JPEG subsamples colour in 2x2 blocks)
    PILImage.fromarray(rgb).save(tmp_path / "a.png")
    PILImage.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    png = imagefiles.read_image(tmp_path / "a.png", **LIMITS)
    assert png.format == "png" and png.bands == "RGB" and png.wcs is None and png.raw_fits is None
    np.testing.assert_array_equal(png.rgb, rgb)
    jpg = imagefiles.read_image(tmp_path / "a.jpg", **LIMITS)
    assert jpg.format == "jpeg" and jpg.rgb.shape == (16, 12, 3)
    assert jpg.rgb[1, 5, 0] > 200 and jpg.rgb[10, 5, 0] < 60


def test_grey_png_becomes_three_equal_planes(tmp_path):
    grey = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    PILImage.fromarray(grey, mode="L").save(tmp_path / "g.png")
    data = imagefiles.read_image(tmp_path / "g.png", **LIMITS)
    np.testing.assert_array_equal(data.rgb, np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("case, message", [
    ("nan", "NaN or infinite"),
    ("shape", r"shape \(2, 8, 8\); expected \(H, W\), \(1, H, W\) or a g,r,z cube"),
    ("big_fits", "more than the limit of 10000 pixels"),
    ("big_png", "more than the limit of 10000 pixels"),
    ("big_file", "more than the limit of 2000000"),
    ("gzip_bomb", "decompresses to more than the limit"),
    ("truncated_gzip", "truncated or corrupt gzip"),
    ("truncated_png", "cannot decode"),
    ("text", "not a FITS, PNG or JPEG file"),
    ("empty", "empty"),
    ("no_image", "no image HDU"),
    ("truncated_fits", "truncated"),
    ("unknown_band", "no colour for band"),
])
def test_bad_files_are_refused_with_a_specific_reason(tmp_path, case, message):
    path = tmp_path / "bad"
    if case == "nan":
        cube = np.zeros((3, 8, 8), np.float32)
        cube[1, 2, 2] = np.nan
        write_cube(path, cube)
    elif case == "shape":
        fits.PrimaryHDU(np.zeros((2, 8, 8), np.float32)).writeto(path)
    elif case == "big_fits":
        fits.PrimaryHDU(np.zeros((101, 100), np.float32)).writeto(path)
    elif case == "big_png":
        PILImage.new("RGB", (200, 60)).save(path, format="PNG")
    elif case == "big_file":
        path.write_bytes(b"SIMPLE  =" + b" " * 2_000_000)
    elif case == "gzip_bomb":
        path.write_bytes(gzip.compress(b"SIMPLE  =" + b"\0" * 5_000_000))
    elif case == "truncated_gzip":
        path.write_bytes(gzip.compress(b"SIMPLE  =" + bytes(range(256)) * 100)[:-200])
    elif case == "truncated_png":
        buf = io.BytesIO()
        PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (50, 50, 3), dtype=np.uint8)).save(buf, "PNG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif case == "text":
        path.write_text("name,ra,dec\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "no_image":
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
                     ).writeto(path)
    elif case == "truncated_fits":
        buf = io.BytesIO()
        fits.PrimaryHDU(np.ones((3, 40, 40), np.float32)).writeto(buf)
        path.write_bytes(buf.getvalue()[:2880 + 4000])
    elif case == "unknown_band":
        write_cube(path, np.zeros((3, 8, 8), np.float32), bands="ugi")
    with pytest.raises(imagefiles.ImageFileError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy also warns about truncated files
        imagefiles.read_image(path, **LIMITS)


def test_wcs_text_round_trip_and_flip_is_an_involution():
    wcs = coords.north_up_wcs(10.0, -30.0, (50, 40), 0.5)
    back = coords.wcs_from_text(coords.wcs_to_text(wcs))
    np.testing.assert_allclose(back.pixel_to_world_values(3, 7), wcs.pixel_to_world_values(3, 7), atol=1e-10)
    twice = coords.flip_rows_wcs(coords.flip_rows_wcs(wcs, 50), 50)
    np.testing.assert_allclose(twice.pixel_to_world_values(3, 7), wcs.pixel_to_world_values(3, 7), atol=1e-10)
    flipped = coords.flip_rows_wcs(wcs, 50)
    np.testing.assert_allclose(flipped.pixel_to_world_values(3, 49 - 7), wcs.pixel_to_world_values(3, 7), atol=1e-10)
    assert coords.wcs_from_text("") is None


def test_north_up_wcs_puts_north_at_row_zero_and_east_left():
    wcs = coords.north_up_wcs(150.0, 2.0, (21, 21), 1.0)
    ra0, dec0 = wcs.pixel_to_world_values(10, 10)
    assert (float(ra0), float(dec0)) == pytest.approx((150.0, 2.0))
    _, dec_top = wcs.pixel_to_world_values(10, 0)
    ra_left, _ = wcs.pixel_to_world_values(0, 10)
    assert dec_top > dec0 and ra_left > ra0


def test_mono_stretch_of_a_flat_image_is_black_not_an_error():
    assert not colour.mono_to_rgb(np.full((4, 4), 7.0)).any()


def test_strip_image_suffix():
    assert imagefiles.strip_image_suffix("NGC 1300.fits.gz") == "NGC 1300"
    assert imagefiles.strip_image_suffix("a.JPEG") == "a"
    assert imagefiles.strip_image_suffix("notes.txt") is None
