"""``manage.py import_images``: real FITS/PNG/JPEG files written by the tests, a real database."""
import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from evalcore.formats import coords, truthfile
from evalcore.pixels import colour
from segmentation.models import Galaxy, Image, ImportBatch, Mask
from segmentation.selectors.images import image_rgb
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

SCALE = 0.262


def cutout(path, ra, dec, n=16, seed=0, extra=()):
    """A Legacy-Survey-like g,r,z cutout: (3, n, n) nanomaggies, FITS y up = north."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    wcs.wcs.cd = np.diag([-SCALE / 3600, SCALE / 3600])
    header = wcs.to_header()
    for i, b in enumerate("grz"):
        header[f"BAND{i}"] = b
    cube = np.random.default_rng(seed).gamma(2.0, 0.05, size=(3, n, n)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(cube, header), *extra]).writeto(path)
    return cube


def run(directory, catalogue, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(directory), "--catalogue", str(catalogue), "--no-progress", *args,
                 stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    return d


def test_fits_png_and_jpeg_are_imported_with_wcs_and_identifiers(db, folder, tmp_path):
    cube = cutout(folder / "NGC1.fits", 150.0, 2.0)
    rgb = np.zeros((12, 10, 3), np.uint8)
    rgb[2:5, 3:6] = (200, 100, 50)
    PILImage.fromarray(rgb).save(folder / "NGC2.png")
    PILImage.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(folder / "NGC3.jpg")
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec,redshift,pixel_scale,manga_id,nsa_id,iau_name\n"
                   "NGC1,150.0,2.0,0.03,,1-100,,\n"
                   "NGC2,151.0,3.0,,0.5,,42,J100400.00+030000.0\n"
                   "NGC3,152.0,4.0,,,,,\n")
    out, err = run(folder, cat)
    assert "imported 3, updated 0, unchanged 0, skipped 0, failed 0" in out and not err

    g1 = Galaxy.objects.get(name="NGC1")
    assert (g1.manga_id, g1.redshift, g1.ra, g1.dec) == ("1-100", 0.03, 150.0, 2.0)
    im1 = g1.images.get(kind="survey_cutout")
    assert (im1.width, im1.height, im1.bands) == (16, 16, "grz asinh (Legacy Survey)")
    assert im1.pixel_scale == pytest.approx(SCALE)
    np.testing.assert_array_equal(image_rgb(im1), colour.grz_to_rgb(cube[:, ::-1, :]))
    w = coords.wcs_from_text(im1.wcs_header)
    assert coords.north_is_up(w, (16, 16))
    with im1.raw.open("rb") as fh:
        np.testing.assert_array_equal(fits.getdata(io.BytesIO(fh.read())), cube[:, ::-1, :])

    g2 = Galaxy.objects.get(name="NGC2")
    assert (g2.nsa_id, g2.iau_name) == (42, "J100400.00+030000.0")
    im2 = g2.images.get()
    np.testing.assert_array_equal(image_rgb(im2), rgb)
    assert im2.pixel_scale == 0.5 and not im2.raw
    built = coords.wcs_from_text(im2.wcs_header)  # from ra/dec + pixel_scale: centred, north up
    ra, dec = built.pixel_to_world_values(4.5, 5.5)
    assert (float(ra), float(dec)) == pytest.approx((151.0, 3.0))

    im3 = Galaxy.objects.get(name="NGC3").images.get()
    assert im3.wcs_header == "" and im3.pixel_scale is None

    batch = ImportBatch.objects.get(kind="images")
    assert batch.finished_at is not None and batch.summary["imported"] == 3


def test_reimport_is_idempotent_and_matches_existing_galaxies_by_identifier(db, folder, tmp_path):
    existing, _ = galaxy_upsert(name="manga 1-100", match={"manga_id": "1-100"},
                                defaults={"ra": 150.0001, "dec": 2.0, "redshift": 0.031})
    cutout(folder / "anything.fits", 150.0, 2.0)
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec,redshift,manga_id,file\nNGC1,150.0,2.0,0.03,1-100,anything.fits\n")
    out, _ = run(folder, cat)
    assert "imported 1, updated 0" in out  # a new image, on the galaxy that existed
    existing.refresh_from_db()
    assert existing.name == "manga 1-100" and existing.redshift == 0.031  # stored values are kept ...
    assert "differs from the stored 0.031" in out  # ... and the difference is reported
    assert Galaxy.objects.count() == 1 and Image.objects.count() == 1
    out, _ = run(folder, cat)
    assert "imported 0, updated 0, unchanged 1" in out
    assert Image.objects.count() == 1


def test_truth_extensions_are_stored_as_truth_masks_on_the_flipped_grid(db, folder, tmp_path):
    spiral = np.zeros((16, 16), np.uint8)
    spiral[12, 3:9] = 1  # near FITS top row = north
    bar = np.zeros_like(spiral)
    bar[7:9, 5:11] = 1
    cutout(folder / "S1.fits", 10.0, 0.0, extra=truthfile.truth_hdus(spiral, bar, {"bar_length_px": 6}))
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec\nS1,10.0,0.0\n")
    run(folder, cat)
    galaxy = Galaxy.objects.get(name="S1")
    assert galaxy.synthetic and galaxy.truth == {"bar_length_px": 6}
    masks = {m.structure: m for m in Mask.objects.filter(galaxy=galaxy, producer__kind="truth")}
    assert masks["spiral"].image.kind == "survey_cutout"
    np.testing.assert_array_equal(masks["spiral"].fractions(), spiral[::-1].astype(np.float32))
    np.testing.assert_array_equal(masks["bar"].fractions(), bar[::-1].astype(np.float32))


def test_bad_inputs_are_skipped_with_specific_reasons_and_good_rows_still_import(db, folder, tmp_path, settings):
    settings.EVALSITE_MAX_IMAGE_PIXELS = 40 * 40
    cutout(folder / "good.fits", 150.0, 2.0)
    nan = np.zeros((3, 8, 8), np.float32)
    nan[0, 1, 1] = np.nan
    fits.PrimaryHDU(nan).writeto(folder / "nan.fits")
    fits.PrimaryHDU(np.zeros((4, 8, 8), np.float32)).writeto(folder / "shape.fits")
    PILImage.new("RGB", (50, 50)).save(folder / "huge.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "stray.png").write_bytes((folder / "huge.png").read_bytes())
    (tmp_path / "outside.png").write_bytes((folder / "huge.png").read_bytes())
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    PILImage.new("RGB", (8, 8)).save(folder / "twin.png")
    PILImage.new("RGB", (8, 8)).save(folder / "twin.jpg")
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec,file\n"
                   "good,150.0,2.0,\n"
                   "nan,1,1,\n"
                   "shape,1,1,\n"
                   "huge,1,1,\n"
                   "broken,1,1,\n"
                   "gone,1,1,\n"
                   "escape,1,1,../outside.png\n"
                   "absolute,1,1,/etc/hostname\n"
                   "named,1,1,missing.fits\n"
                   "twin,1,1,\n"
                   "badpos,abc,1,\n"
                   "link,1,1,\n"
                   "link2,1,1,link.png\n"
                   "good,150,2,\n")
    out, err = run(folder, cat)
    assert "imported 1, updated 0, unchanged 0, skipped 3, failed 13" in out  # skipped: files no row uses
    expected = {
        "nan": "NaN or infinite", "shape": "shape (4, 8, 8)", "huge": "more than the limit of 1600 pixels",
        "broken": "not a readable PNG or JPEG file", "gone": "no image file named gone",
        "escape": "outside the image folder",
        "absolute": "absolute path", "named": "'missing.fits' does not exist", "twin": "several files match",
        "badpos": "ra 'abc' is not a number", "link": "links outside the image folder",
        "link2": "'link.png' is outside the image folder",
    }
    for name, reason in expected.items():
        line = next(ln for ln in out.splitlines() if f"({name})" in ln)
        assert line.lstrip().startswith("FAILED") and reason in line, line
    assert "repeats catalogue row 1" in out
    for unused in ("stray.png", "twin.png", "twin.jpg"):
        assert f"{unused}: image file not in the catalogue" in out
    assert "failed" in err
    assert list(Galaxy.objects.values_list("name", flat=True)) == ["good"]


def test_a_row_whose_galaxy_has_masks_on_a_different_size_image_is_refused(db, folder, tmp_path):
    galaxy, _ = galaxy_upsert(name="M1", defaults={"ra": 10.0, "dec": 0.0})
    image, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
    producer = producer_get_or_create(kind="volunteers", name="GZ3D", version="v4_0_0")
    mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer, state="marked",
               numerators=np.eye(8, dtype=np.int64), denominator=1)
    cutout(folder / "M1.fits", 10.0, 0.0, n=16)
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec\nM1,10.0,0.0\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_images", str(folder), "--catalogue", str(cat), "--no-progress", stdout=out,
                     stderr=io.StringIO())
    assert "failed 1" in out.getvalue() and "masks exist on the stored 8x8 image" in out.getvalue()
    assert Image.objects.get(pk=image.pk).width == 8


def test_missing_catalogue_columns_stop_the_command_with_the_columns_named(db, folder, tmp_path):
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra\nx,1\n")
    with pytest.raises(CommandError, match="missing column.*dec.*has name, ra"):
        run(folder, cat)
    assert not Galaxy.objects.exists()


def test_a_run_where_every_row_fails_ends_in_an_error(db, folder, tmp_path):
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec\nghost,1,1\n")
    with pytest.raises(CommandError, match="nothing imported: all 1 catalogue row"):
        run(folder, cat)
    assert ImportBatch.objects.get().summary["failed"] == 1
