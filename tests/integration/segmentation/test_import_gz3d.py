import io

import numpy as np
import pytest
from astropy.io import fits
from django.core.management import CommandError, call_command
from gz3d_samples import bar_drawings, spiral_drawings, square, write_sample

from evalcore.formats import gz3d, truthfile
from segmentation.models import Galaxy, Image, ImportBatch, Mask, Producer, VolunteerClassification
from segmentation.services.imports.gz3d import import_gz3d

pytestmark = pytest.mark.django_db
SIZE = 60


def run(*paths, **kwargs):
    return import_gz3d([str(p) for p in paths], progress=False, **kwargs)


def current(galaxy, structure):
    return Mask.objects.get(galaxy=galaxy, structure=structure, is_current=True)


def snapshot():
    return (
        sorted(Mask.objects.values_list("pk", "content_hash", "is_current", "state")),
        sorted(VolunteerClassification.objects.values_list("pk", "classification_id", "polygons")),
        sorted(Galaxy.objects.values_list("pk", "name", "manga_id", "ra", "dec")),
        sorted(Image.objects.values_list("pk", "content_hash")),
    )


def test_import_stores_galaxy_image_polygons_and_exact_fractions(tmp_path):
    path = write_sample(tmp_path / "gz3d_1-100001_127_777.fits.gz", size=SIZE)
    result = run(path)
    assert (result.summary.imported, result.summary.failed) == (1, 0)
    galaxy = Galaxy.objects.get()
    assert (galaxy.name, galaxy.manga_id, galaxy.nsa_id) == ("J100000.00+020000.0", "1-100001", 12345)
    assert galaxy.ra == pytest.approx(150.0) and galaxy.other_ids["zooniverse_subject_id"] == 777
    image = galaxy.images.get()
    assert (image.kind, image.width, image.height) == ("gz3d_subject", SIZE, SIZE)
    assert image.pixel_scale == pytest.approx(0.099)
    spiral = current(galaxy, "spiral")
    assert spiral.producer.name == "GZ3D" and spiral.producer.version == "v4_0_0"
    assert spiral.producer.kind == Producer.Kind.VOLUNTEERS
    expected = gz3d.volunteer_counts(spiral_drawings(SIZE), (SIZE, SIZE))
    assert (spiral.denominator, spiral.n_volunteers, spiral.state) == (5, 5, "marked")
    assert np.array_equal(spiral.fractions(), (expected / 5).astype(np.float32))
    assert spiral.fractions().max() == pytest.approx(4 / 5)  # the overlap counts the volunteer once
    assert spiral.details["crosscheck"]["agrees"] and spiral.details["file"] == path.name
    assert current(galaxy, "bar").denominator == 3
    rows = VolunteerClassification.objects.filter(galaxy=galaxy, structure="spiral").order_by("classification_id")
    assert [r.classification_id for r in rows] == [1000, 1001, 1002, 1003, 1004]
    assert len(rows[0].polygons) == 2 and rows[4].polygons == []
    batch = ImportBatch.objects.get()
    assert batch.kind == "gz3d" and batch.summary["imported"] == 1 and batch.finished_at is not None
    assert result.galaxy_ids == [galaxy.pk]


def test_reimport_is_idempotent_and_changed_polygons_make_a_new_current_mask(tmp_path):
    path = write_sample(tmp_path / "a.fits", size=SIZE)
    run(path)
    before = snapshot()
    again = run(path)
    assert (again.summary.imported, again.summary.updated, again.summary.unchanged) == (0, 0, 1)
    assert snapshot() == before
    galaxy = Galaxy.objects.get()
    old = current(galaxy, "spiral")
    spiral = spiral_drawings(SIZE)
    spiral[-1] = gz3d.Classification(1004, "later", [square(2, 2, 6)])
    write_sample(path, size=SIZE, spiral=spiral)
    changed = run(path)
    assert changed.summary.updated == 1 and Galaxy.objects.count() == 1
    new = current(galaxy, "spiral")
    assert new.pk != old.pk and new.supersedes_id == old.pk
    old.refresh_from_db()
    assert not old.is_current and old.fractions()[3, 3] == 0  # the old mask is kept, unchanged
    assert new.fractions()[3, 3] == pytest.approx(1 / 5)
    assert current(galaxy, "bar").pk == Mask.objects.get(structure="bar").pk  # bar did not change
    assert VolunteerClassification.objects.get(classification_id=1004).polygons == [
        [[float(x), float(y)] for x, y in square(2, 2, 6)]]


def test_a_task_without_rows_is_not_asked(tmp_path):
    run(write_sample(tmp_path / "a.fits", size=SIZE, bar=[]))
    bar = current(Galaxy.objects.get(), "bar")
    assert bar.state == Mask.State.NOT_ASKED and bar.fractions() is None and bar.n_volunteers is None
    assert current(Galaxy.objects.get(), "spiral").state == Mask.State.MARKED


def test_asked_but_nothing_drawn_is_empty_not_unasked(tmp_path):
    nobody = [gz3d.Classification(1, "t", []), gz3d.Classification(2, "t", [])]
    run(write_sample(tmp_path / "a.fits", size=SIZE, bar=nobody))
    bar = current(Galaxy.objects.get(), "bar")
    assert bar.state == Mask.State.EMPTY and bar.denominator == 2 and bar.fractions().sum() == 0


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_bad_files_are_skipped_with_reasons_and_change_nothing(tmp_path):
    folder = tmp_path / "release"
    folder.mkdir()
    good = write_sample(folder / "gz3d_1-1_127_1.fits.gz", size=SIZE, manga_id="1-1", iau_name="J1")
    second = write_sample(folder / "gz3d_1-2_127_2.fits.gz", size=SIZE, manga_id="1-2", iau_name="J2")
    (folder / "gz3d_broken.fits").write_text("not fits")
    write_sample(folder / "gz3d_1-3_127_3.fits", size=SIZE, manga_id="1-3", iau_name="J3", spiral=[], bar=[])
    first = run(folder)
    assert (first.summary.imported, first.summary.failed) == (2, 2)
    reasons = dict(first.summary.failures)
    assert "not a readable FITS file" in reasons[str(folder / "gz3d_broken.fits")]
    assert "zero classifications" in reasons[str(folder / "gz3d_1-3_127_3.fits")]
    before = snapshot()
    # the stored galaxies' files go bad: a truncated download, then a file whose image lost its colour planes
    _truncate(second)
    with fits.open(good) as hdul:
        hdus = [h.copy() for h in hdul]
    hdus[0] = fits.PrimaryHDU(hdus[0].data[:, :, 0], header=hdus[0].header)
    fits.HDUList(hdus).writeto(good, overwrite=True)
    again = run(good, second, tmp_path / "absent.fits")
    assert again.summary.failed == 3 and again.summary.imported + again.summary.updated == 0
    reasons = dict(again.summary.failures)
    assert "truncated or corrupt gzip" in reasons[str(second)]
    assert "HDU 0 image has shape" in reasons[str(good)]
    assert reasons[str(tmp_path / "absent.fits")] == "no such file or folder"
    assert snapshot() == before


def test_bad_polygons_are_dropped_and_counted_and_the_galaxy_imports(tmp_path):
    spiral = spiral_drawings(SIZE)
    spiral[1] = gz3d.Classification(1001, "t", [*spiral[1].polygons, [[1, 1], [2, 2]],
                                                  [[0, 0], [10, 0], [10, 9000]]])
    result = run(write_sample(tmp_path / "a.fits", size=SIZE, spiral=spiral))
    assert result.summary.imported == 1 and result.summary.counters["polygons dropped"] == 2
    mask = current(Galaxy.objects.get(), "spiral")
    assert mask.details["dropped_polygons"] == 2
    assert mask.details["dropped_reasons"] == {"fewer than 3 vertices": 1, "vertex far outside the image": 1}
    row = VolunteerClassification.objects.get(classification_id=1001)
    assert row.dropped_polygons == 2 and len(row.polygons) == 1
    expected = gz3d.volunteer_counts(spiral_drawings(SIZE), (SIZE, SIZE))
    assert np.array_equal(mask.fractions(), (expected / 5).astype(np.float32))


def _flip_hdu(path, index):
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    hdus[index] = fits.ImageHDU(hdus[index].data[::-1].copy(), header=hdus[index].header)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def test_crosscheck_reports_a_flipped_hdu(tmp_path):
    flipped = write_sample(tmp_path / "flipped.fits", size=SIZE, manga_id="1-1", iau_name="J1")
    _flip_hdu(flipped, 3)
    fine = write_sample(tmp_path / "fine.fits", size=SIZE, manga_id="1-2", iau_name="J2")
    result = run(flipped, fine)
    assert result.summary.imported == 2
    assert result.summary.counters == {"spiral HDU cross-check disagreements": 1}
    (where, text), = result.summary.warnings
    assert where == str(flipped) and "HDU 3 differs" in text and "the HDU is flipped up-down" in text
    bad = current(Galaxy.objects.get(manga_id="1-1"), "spiral").details["crosscheck"]
    assert not bad["agrees"] and bad["best_match"]["transform"] == "flipped up-down"
    assert current(Galaxy.objects.get(manga_id="1-2"), "spiral").details["crosscheck"]["agrees"]
    # our mask comes from the polygons, so the flip in HDU 3 does not reach it
    expected = gz3d.volunteer_counts(spiral_drawings(SIZE), (SIZE, SIZE))
    assert np.array_equal(current(Galaxy.objects.get(manga_id="1-1"), "spiral").fractions(),
                          (expected / 5).astype(np.float32))
    assert ImportBatch.objects.get().summary["warnings"][0]["where"] == str(flipped)


def _break_bar_json(path):
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    old = hdus[10].data
    hdus[10] = fits.BinTableHDU.from_columns([
        fits.Column(name="classification_id", format="K", array=old["classification_id"]),
        fits.Column(name="time_stamp", format="30A", array=old["time_stamp"]),
        fits.Column(name="bar_paths", format="9A", array=np.array(["[[[1, 2]"] * len(old)))])
    fits.HDUList(hdus).writeto(path, overwrite=True)


def test_malformed_json_skips_the_file_or_falls_back_to_hdu_counts(tmp_path):
    path = write_sample(tmp_path / "a.fits", size=SIZE)
    _break_bar_json(path)
    skipped = run(path)
    assert skipped.summary.failed == 1 and "HDU 10 classification 2000: bar_paths is not valid JSON" in \
        skipped.summary.failures[0][1]
    assert not Galaxy.objects.exists()
    fallback = run(path, on_bad_json="fallback")
    assert fallback.summary.imported == 1 and fallback.summary.counters["bar masks from HDU counts (fallback)"] == 1
    bar = current(Galaxy.objects.get(), "bar")
    with fits.open(path) as hdul:
        hdu4 = hdul[4].data
    assert bar.denominator == 3 and bar.details["source"] == "HDU 4 / N (fallback)"
    assert np.array_equal(bar.fractions(), np.clip(hdu4 / 3, 0, 1).astype(np.float32))
    assert not VolunteerClassification.objects.filter(structure="bar").exists()


def test_truth_is_stored_when_the_file_has_it(tmp_path):
    spiral = np.zeros((SIZE, SIZE), np.uint8)
    spiral[10:14, 10:40] = 1
    bar = np.zeros((SIZE, SIZE), np.uint8)
    bar[28:32, 20:40] = 1
    run(write_sample(tmp_path / "s.fits.gz", size=SIZE, extra_hdus=truthfile.truth_hdus(spiral, bar, {"arms": 2})))
    galaxy = Galaxy.objects.get()
    assert galaxy.synthetic and galaxy.truth == {"arms": 2}
    truth = Mask.objects.get(galaxy=galaxy, structure="bar", producer__kind="truth")
    assert np.array_equal(truth.fractions(), bar.astype(np.float32))


def test_galaxies_are_matched_by_manga_id_and_named_by_iau_name_or_manga_id(tmp_path):
    run(write_sample(tmp_path / "a.fits", size=SIZE, manga_id="1-5", iau_name=None))
    assert Galaxy.objects.get().name == "1-5"
    run(write_sample(tmp_path / "a.fits", size=SIZE, manga_id="1-5", iau_name="J5"))
    galaxy = Galaxy.objects.get()
    assert (galaxy.manga_id, galaxy.iau_name) == ("1-5", "J5")
    # the same IAU name under another MaNGA id (a re-observed galaxy) stays a separate galaxy
    run(write_sample(tmp_path / "b.fits", size=SIZE, manga_id="1-6", iau_name="J5"))
    assert sorted(Galaxy.objects.values_list("manga_id", flat=True)) == ["1-5", "1-6"]


def test_release_metadata_table_in_the_folder_is_used_not_imported(tmp_path):
    write_sample(tmp_path / "gz3d_1-7_127_99.fits.gz", size=SIZE, manga_id="1-7", iau_name=None, nsa_id=None)
    cols = [fits.Column(name="file_name", format="40A", array=np.array(["1-7_127_99.fits"])),
            fits.Column(name="IAUNAME", format="20A", array=np.array(["J7"])),
            fits.Column(name="nsa_id", format="K", array=np.array([777]))]
    fits.BinTableHDU.from_columns(cols).writeto(tmp_path / "gz3d_metadata.fits")
    fits.BinTableHDU.from_columns(cols).writeto(tmp_path / "gz3d_foreground_stars.fits")
    result = run(tmp_path)
    assert (result.summary.imported, result.summary.skipped, result.summary.failed) == (1, 1, 0)
    assert result.summary.counters["metadata rows read"] == 1
    galaxy = Galaxy.objects.get()
    assert (galaxy.name, galaxy.iau_name, galaxy.nsa_id) == ("J7", "J7", 777)


def test_command_prints_the_summary(tmp_path):
    good = write_sample(tmp_path / "good.fits.gz", size=SIZE)
    (tmp_path / "bad.fits.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    out = io.StringIO()
    call_command("import_gz3d", str(good), str(tmp_path / "bad.fits.gz"), "--no-progress", stdout=out)
    text = out.getvalue()
    assert "imported 1, updated 0, unchanged 0, skipped 0, failed 1" in text
    assert f"FAILED {tmp_path / 'bad.fits.gz'}: truncated or corrupt gzip" in text
    assert "import batch #" in text
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_gz3d", str(tmp_path / "bad.fits.gz"), "--no-progress", stdout=io.StringIO())


def test_release_option_names_the_producer(tmp_path):
    run(write_sample(tmp_path / "a.fits", size=SIZE, bar=bar_drawings(SIZE, n=2)), release="v3_0_0")
    assert set(Producer.objects.values_list("version", flat=True)) == {"v3_0_0"}


def test_worker_processes_give_the_same_result(tmp_path):
    paths = [write_sample(tmp_path / f"gz3d_1-{i}_127_{i}.fits.gz", size=SIZE, manga_id=f"1-{i}", iau_name=f"J{i}")
             for i in range(3)]
    (tmp_path / "gz3d_bad.fits").write_text("nope")
    parallel = run(tmp_path, jobs=2)
    assert (parallel.summary.imported, parallel.summary.failed) == (3, 1)
    hashes = sorted(Mask.objects.values_list("galaxy__manga_id", "structure", "content_hash"))
    Galaxy.objects.all().delete()
    serial = run(*paths)
    assert serial.summary.imported == 3
    assert sorted(Mask.objects.values_list("galaxy__manga_id", "structure", "content_hash")) == hashes
