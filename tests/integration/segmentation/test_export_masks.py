"""``manage.py export_masks``: FITS files per galaxy opened with astropy, their WCS against the image's, the
provenance headers, and the measurement catalogue as FITS table and CSV."""
import csv
import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from django.core.management import CommandError, call_command

from evalcore.formats import coords
from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.selectors.measurements import current_measurement
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store
from segmentation.services.measurements import measure_selection
from tests.factories.measurements import PIXEL_SCALE, disk_image, galaxy_with_image, producer, store_bar


def export(out, *args):
    buf = io.StringIO()
    call_command("export_masks", "--out", str(out), "--no-progress", *args, stdout=buf)
    return buf.getvalue()


def _galaxy_with_masks():
    # A bright star off-centre in the image marks a sky position; the model's bar mask is drawn there.
    rgb = disk_image()
    rgb[8:12, 44:48] = 255
    galaxy, image = galaxy_with_image("EXP-1", ra=150.0, dec=2.0, redshift=0.05, axis_ratio=0.6,
                                      position_angle=30.0, rgb=rgb)
    galaxy.manga_id = "1-234"
    galaxy.save(update_fields=["manga_id"])
    model, vols = producer("model", "unet", "v3"), producer("volunteers", "GZ3D", "v4_0_0")
    store_bar(galaxy, image, model, slice(8, 12), slice(44, 48))
    spiral = np.zeros((image.height, image.width), np.int64)
    spiral[20:24, 10:30] = 3
    spiral[40:44, 30:50] = 1
    mask_store(galaxy=galaxy, image=image, structure="spiral", producer=vols, state="marked",
               numerators=spiral, denominator=4, n_volunteers=4)
    mask_store(galaxy=galaxy, image=image, structure="bar", producer=vols, state="not_asked")
    return galaxy, image


def test_fits_files_carry_the_image_wcs_and_the_masks_where_the_image_is(db, tmp_path):
    galaxy, image = _galaxy_with_masks()
    bare, _ = galaxy_with_image("EXP-2 no masks", ra=151.0)
    measure_selection()
    out = export(tmp_path)
    assert "wrote 1 FITS files and a catalogue of 3 masks" in out
    assert "skipped EXP-2 no masks: no current mask on its survey_cutout image" in out
    with fits.open(tmp_path / "EXP-1.fits") as hdul:
        primary = hdul[0]
        assert primary.data.shape == (3, image.height, image.width)
        assert primary.header["GALAXY"] == "EXP-1" and primary.header["MANGAID"] == "1-234"
        assert primary.header["PIXSCALE"] == PIXEL_SCALE
        img_wcs = WCS(primary.header, naxis=2)
        names = [(h.name, h.ver) for h in hdul[1:]]
        assert names == [("MODEL_BAR", 1), ("VOLUNTEERS_BAR", 1), ("VOLUNTEERS_SPIRAL", 1)]
        bar = hdul["MODEL_BAR"]
        assert (bar.data.dtype.kind, bar.data.dtype.itemsize) == ("f", 4)  # float32 (big-endian in FITS)
        assert bar.data.shape == (image.height, image.width)
        # The brightest pixels of the image and the marked pixels of the mask are the same sky position.
        star_rows, star_cols = np.nonzero(primary.data[0] == 255)
        mask_rows, mask_cols = np.nonzero(bar.data > 0)
        star_sky = img_wcs.pixel_to_world(star_cols.mean(), star_rows.mean())
        mask_sky = WCS(bar.header).pixel_to_world(mask_cols.mean(), mask_rows.mean())
        assert star_sky.separation(mask_sky).arcsec < 0.01
        # and the WCS is the stored one: north up, so the star (row 10, near the top) lies north of centre
        centre = img_wcs.pixel_to_world((image.width - 1) / 2, (image.height - 1) / 2)
        assert centre.ra.deg == pytest.approx(150.0) and centre.dec.deg == pytest.approx(2.0)
        assert star_sky.dec.deg > centre.dec.deg and star_sky.ra.deg < centre.ra.deg  # west = right = lower RA
        h = bar.header
        assert (h["PRODKIND"], h["PRODNAME"], h["PRODVER"], h["PRODCODE"]) == ("model", "unet", "v3", "test-code-1")
        assert h["STATE"] == "marked" and len(h["PARHASH"]) == 64 and len(h["MASKHASH"]) == 64
        assert h["MEASVER"] == MEASUREMENT_CODE_VERSION and h["BARLPX"] == pytest.approx(4.0)
        sp = hdul["VOLUNTEERS_SPIRAL"]
        assert sp.header["NVOLUNT"] == 4 and sp.header["DENOM"] == 4
        assert sp.data[21, 15] == pytest.approx(0.75) and sp.data[41, 35] == pytest.approx(0.25)
        assert hdul["VOLUNTEERS_BAR"].data is None and hdul["VOLUNTEERS_BAR"].header["STATE"] == "not_asked"

    table = Table.read(tmp_path / "measurements.fits")
    with open(tmp_path / "measurements.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(table) == len(rows) == 3
    by_ext = {r["extname"]: r for r in rows}
    bar_row = by_ext["MODEL_BAR"]
    assert bar_row["galaxy"] == "EXP-1" and bar_row["manga_id"] == "1-234" and bar_row["fits_file"] == "EXP-1.fits"
    assert bar_row["producer_name"] == "unet" and bar_row["measurement_code_version"] == MEASUREMENT_CODE_VERSION
    stored = current_measurement(galaxy.masks.get(producer__kind="model"))
    assert float(bar_row["length_kpc"]) == pytest.approx(stored.length_kpc)
    assert float(bar_row["length_kpc_err"]) == pytest.approx(stored.result["length_kpc_err"])
    assert by_ext["VOLUNTEERS_BAR"]["reason"] == "bar not asked of this source"
    t = {row["extname"]: row for row in table}
    assert t["MODEL_BAR"]["length_kpc"] == pytest.approx(stored.length_kpc)
    assert t["VOLUNTEERS_SPIRAL"]["n_volunteers"] == 4 and t["MODEL_BAR"]["n_volunteers"] == -1
    raw = fits.getdata(tmp_path / "measurements.fits", 1)
    assert np.isnan(raw["pitch_abs"][list(raw["extname"]).index("MODEL_BAR")])  # no value = NaN
    assert table["length_kpc"].unit == "kpc"


def test_selection_by_name_and_synthetic_and_clear_errors(db, tmp_path):
    galaxy, image = galaxy_with_image("SYN-1", synthetic=True)
    store_bar(galaxy, image, producer("truth"), slice(30, 34), slice(10, 50))
    real, real_image = galaxy_with_image("REAL-1", ra=160.0)
    store_bar(real, real_image, producer("model"), slice(30, 34), slice(10, 50))
    export(tmp_path / "a", "--synthetic", "only")
    assert sorted(p.name for p in (tmp_path / "a").glob("*.fits")) == ["SYN-1.fits", "measurements.fits"]
    rows = Table.read(tmp_path / "a" / "measurements.fits")
    assert list(rows["reason"]) == [f"not measured by {MEASUREMENT_CODE_VERSION} (run manage.py measure_masks)"]
    export(tmp_path / "b", "--names", "REAL-1")
    assert (tmp_path / "b" / "REAL-1.fits").exists() and not (tmp_path / "b" / "SYN-1.fits").exists()
    with pytest.raises(CommandError, match="no galaxy named NOPE"):
        export(tmp_path / "c", "--names", "REAL-1", "NOPE")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="cannot write to"):
        export(blocker / "sub")


def test_primary_holds_the_imported_band_data_when_there_is_some(db, tmp_path):
    galaxy, _ = galaxy_upsert(name="BANDS", defaults={"ra": 10.0, "dec": -5.0})
    cube = np.random.default_rng(1).normal(size=(3, 32, 32)).astype(np.float32)
    wcs = coords.north_up_wcs(10.0, -5.0, (32, 32), 0.262)
    buf = io.BytesIO()
    fits.PrimaryHDU(data=cube, header=wcs.to_header()).writeto(buf)
    rgb = np.zeros((32, 32, 3), np.uint8)
    image, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=rgb, pixel_scale=0.262,
                           wcs_header=coords.wcs_to_text(wcs), raw_fits=buf.getvalue(), bands="grz")
    store_bar(galaxy, image, producer("model"), slice(10, 12), slice(5, 25))
    export(tmp_path)
    with fits.open(tmp_path / "BANDS.fits") as hdul:
        assert hdul[0].header["CONTENT"] == "imported band data" and hdul[0].header["BANDS"] == "grz"
        np.testing.assert_array_equal(hdul[0].data, cube)
        sky = WCS(hdul[0].header, naxis=2).pixel_to_world(15.5, 15.5)
        assert sky.ra.deg == pytest.approx(10.0) and sky.dec.deg == pytest.approx(-5.0)
