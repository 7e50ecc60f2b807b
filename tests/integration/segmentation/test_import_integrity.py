"""Importers given the wrong kind of path, finding nothing, re-reading a renamed file; files stored once per
content. Real files on disk, the real commands and storage."""
from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from django.core.management import CommandError, call_command
from gz3d_samples import write_sample

from segmentation.models import Galaxy, Image, ImportBatch, Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.batches import batch_running
from segmentation.services.masks import mask_store, producer_get_or_create

pytestmark = pytest.mark.django_db


def command(name, *args) -> str:
    out = io.StringIO()
    call_command(name, *map(str, args), "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(folder / "A.fits")
    return folder


# --- a folder where a file belongs -------------------------------------------------------------------------
def test_import_images_with_a_folder_as_the_catalogue_says_so_and_records_no_batch(images, tmp_path):
    with pytest.raises(CommandError, match=r"is a folder; give the catalogue file itself"):
        command("import_images", images, "--catalogue", tmp_path)
    assert not ImportBatch.objects.exists()


def test_import_images_with_a_file_as_the_image_folder_says_so(images, tmp_path):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("name,ra,dec\nA,150.0,2.0\n")
    with pytest.raises(CommandError, match=r"is not a folder"):
        command("import_images", catalogue, "--catalogue", catalogue)
    assert not ImportBatch.objects.exists()


def test_import_catalogue_of_a_folder_says_so_and_records_no_batch(tmp_path):
    with pytest.raises(CommandError, match=r"is a folder; give the catalogue file itself"):
        command("import_catalogue", tmp_path)
    assert not ImportBatch.objects.exists()


def test_a_batch_whose_run_breaks_is_finished_with_the_error():
    with pytest.raises(RuntimeError, match="disk full"):
        with batch_running(kind=ImportBatch.Kind.IMAGES, source="somewhere") as batch:
            raise RuntimeError("disk full")
    batch.refresh_from_db()
    assert batch.finished_at is not None and batch.summary == {"error": "RuntimeError: disk full"}


# --- import_gz3d finding nothing, and the suffixes it accepts ------------------------------------------
@pytest.mark.parametrize("layout", ["empty folder", "folder named like a file", "only other files", "no such path"])
def test_import_gz3d_of_nothing_says_so_and_fails(tmp_path, layout):
    target = tmp_path / "gz3d"
    if layout == "empty folder":
        target.mkdir()
    elif layout == "folder named like a file":
        target = tmp_path / "gz3d_1-100001_127_777.fits"
        target.mkdir()
    elif layout == "only other files":
        target.mkdir()
        (target / "notes.txt").write_text("no galaxies here")
        (target / "picture.png").write_bytes(b"\x89PNG")
    with pytest.raises(CommandError, match=r"no GZ3D file found .*\.fits, \.fit, \.fts, .*\(any case\)"):
        command("import_gz3d", target)
    assert not ImportBatch.objects.exists() and not Galaxy.objects.exists()


def test_import_gz3d_takes_the_fits_suffixes_of_import_images_in_any_case(tmp_path):
    folder = tmp_path / "release"
    (folder / "deeper").mkdir(parents=True)
    (folder / "looks_like.fits").mkdir()  # a folder, not a file: searched, never read
    write_sample(folder / "gz3d_1-1_127_11.FITS", manga_id="1-1", iau_name="J1")
    write_sample(folder / "gz3d_1-2_127_12.fit", manga_id="1-2", iau_name="J2")
    gzipped = write_sample(folder / "deeper" / "gz3d_1-3_127_13.fts.gz", manga_id="1-3", iau_name="J3")
    gzipped.rename(folder / "deeper" / "gz3d_1-3_127_13.FTS.GZ")
    write_sample(folder / "gz3d_1-4_127_14.Fits.Gz", manga_id="1-4", iau_name="J4")
    out = command("import_gz3d", folder)
    assert "imported 4, updated 0, unchanged 0, skipped 0, failed 0" in out
    assert sorted(Galaxy.objects.values_list("manga_id", flat=True)) == ["1-1", "1-2", "1-3", "1-4"]
    subjects = sorted(g.other_ids["zooniverse_subject_id"] for g in Galaxy.objects.all())
    assert subjects == [11, 12, 13, 14]  # read from the names whatever their case


# --- a re-import from a renamed file ---------------------------------------------------------------------
def test_a_re_import_from_a_file_of_another_name_reports_updated(tmp_path):
    (tmp_path / "a").mkdir()
    first = write_sample(tmp_path / "a" / "gz3d_1-100001_127_777.fits.gz")
    assert "imported 1," in command("import_gz3d", first)
    renamed = tmp_path / "b" / "gz3d_1-100001_127_777_v2.fits.gz"
    renamed.parent.mkdir()
    shutil.copy(first, renamed)
    out = command("import_gz3d", renamed)
    assert "imported 0, updated 1, unchanged 0" in out
    galaxy = Galaxy.objects.get()
    assert galaxy.other_ids["gz3d_file"] == renamed.name
    assert ImportBatch.objects.order_by("-pk").first().summary["updated"] == 1
    # the same file again: now nothing changes, and it says so
    assert "imported 0, updated 0, unchanged 1" in command("import_gz3d", renamed)


# --- one stored file per content ---------------------------------------------------------------------------
def media_files(settings) -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def test_identical_images_and_masks_of_two_galaxies_are_stored_once(settings):
    rgb = np.random.default_rng(3).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    numerators = np.zeros((20, 20), np.int64)
    numerators[5:9, 3:15] = 2
    producer = producer_get_or_create(kind="volunteers", name="GZ3D", version="v4")
    raw = fits.HDUList([fits.PrimaryHDU(np.ones((3, 20, 20), np.float32))])
    buf = io.BytesIO()
    raw.writeto(buf)
    for name in ("twin-a", "twin-b"):
        galaxy, _ = galaxy_upsert(name=name)
        image, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=rgb, raw_fits=buf.getvalue())
        mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer, state="marked",
                   numerators=numerators, denominator=4)
    images, masks = list(Image.objects.all()), list(Mask.objects.all())
    assert len(images) == len(masks) == 2
    assert images[0].file.name == images[1].file.name and images[0].raw.name == images[1].raw.name
    assert masks[0].data.name == masks[1].data.name
    digest = masks[0].content_hash
    assert masks[0].data.name == f"masks/{digest[:2]}/{digest[2:4]}/{digest}.png"  # the name docs/masks.md gives
    assert images[0].file.name == f"images/{images[0].content_hash[:2]}/{images[0].content_hash}.png"
    raw_digest = hashlib.sha256(buf.getvalue()).hexdigest()
    assert images[0].raw.name == f"images/raw/{raw_digest[:2]}/{raw_digest}.fits"
    assert len(media_files(settings)) == 3  # one picture, one band file, one mask
    assert np.array_equal(masks[1].fractions(), (numerators / 4).astype(np.float32))  # read through either row


def test_a_file_left_by_a_rolled_back_import_is_reused_not_duplicated(settings):
    """A transaction that rolled back after writing its file leaves the file behind; the next store of
    the same content points at it instead of writing a second copy under another name."""
    rgb = np.full((8, 8, 3), 77, np.uint8)
    galaxy, _ = galaxy_upsert(name="retry")
    with pytest.raises(RuntimeError):
        from django.db import transaction

        with transaction.atomic():
            image_store(galaxy=galaxy, kind="survey_cutout", rgb=rgb)
            raise RuntimeError("the rest of the import failed")
    assert not Image.objects.exists() and len(media_files(settings)) == 1
    image, status = image_store(galaxy=galaxy, kind="survey_cutout", rgb=rgb)
    assert status == "created" and len(media_files(settings)) == 1
    assert image.file.name == f"images/{image.content_hash[:2]}/{image.content_hash}.png"
