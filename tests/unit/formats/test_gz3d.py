import gzip
import json

import numpy as np
import pytest
from astropy.io import fits
from gz3d_samples import bar_drawings, spiral_drawings, square, write_sample

from evalcore.formats import gz3d, truthfile


@pytest.mark.parametrize("size", [525, 101])
def test_round_trip_in_the_release_layout(tmp_path, size):
    path = write_sample(tmp_path / f"gz3d_1-100001_127_{size}.fits.gz", size=size)
    with gzip.open(path) as fh:  # really gzip, really FITS, 11 HDUs read by index, no EXTNAMEs
        with fits.open(fh) as hdul:
            assert len(hdul) == 11
            assert all("EXTNAME" not in h.header for h in hdul)
            assert hdul[0].data.shape == (size, size, 3) and hdul[0].data.dtype == np.uint8
            assert hdul[3].data.dtype.kind == "f" and hdul[3].data.dtype.itemsize == 8
    gz = gz3d.read_gz3d(path)
    assert gz.shape == (size, size)
    assert gz.pixel_scale == pytest.approx(0.099, rel=1e-9)
    assert gz.wcs.wcs.crpix.tolist() == [size / 2, size / 2]
    ra, dec = gz.wcs.pixel_to_world_values(size / 2 - 1, size / 2 - 1)  # CRPIX is 1-based
    assert (float(ra), float(dec)) == pytest.approx((150.0, 2.0))
    assert gz.metadata["MANGAID"] == "1-100001" and gz.metadata["nsa_id"] == 12345
    assert isinstance(gz.metadata["nsa_id"], int) and isinstance(gz.metadata["ra"], float)
    assert [c.classification_id for c in gz.spiral] == [1000, 1001, 1002, 1003, 1004]
    assert gz.spiral[0].polygons == spiral_drawings(size)[0].polygons
    assert gz.spiral[-1].polygons == []
    assert gz.bar[0].time_stamp == "2017-04-01 10:00:00 UTC"
    assert gz.truth is None and gz.unusable_tasks == {}


def test_hdu_counts_polygons_but_volunteer_counts_count_people(tmp_path):
    size = 101
    gz = gz3d.read_gz3d(write_sample(tmp_path / "a.fits", size=size))
    s = size // 5
    overlap = (s + 5, s + s // 2 + 5)  # inside both squares of classification 1000 (row, col)
    only_second = (s + 5, 2 * s + 5)  # inside the second square only (row, col)
    assert gz.spiral_counts[overlap] == 5.0  # 4 volunteers, one of them twice
    counts = gz3d.volunteer_counts(gz.spiral, gz.shape)
    assert counts[overlap] == 4 and counts[only_second] == 1
    assert counts.dtype == np.int64 and counts.max() <= len(gz.spiral)
    assert counts.sum() == 4 * s * s + (s + s // 2) * s - s * s
    raster = gz3d.rasterise_task(gz.spiral, gz.shape)
    assert np.array_equal(raster.volunteer_counts, counts)
    assert np.array_equal(raster.polygon_counts, gz.spiral_counts)


def test_self_intersecting_polygons_are_left_out_of_hdu_counts_only(tmp_path):
    bow_tie = [[10, 10], [30, 30], [30, 10], [10, 30]]
    spiral = [gz3d.Classification(1, "t", [bow_tie])]
    gz = gz3d.read_gz3d(write_sample(tmp_path / "b.fits", size=50, spiral=spiral))
    assert gz.spiral_counts.sum() == 0
    counts = gz3d.volunteer_counts(gz.spiral, gz.shape)
    assert counts[20, 15] == 1 and counts[15, 20] == 0  # the bow tie's left lobe is filled, its top is not


def test_truth_extensions_are_read(tmp_path):
    spiral = np.zeros((40, 40), np.uint8)
    spiral[5:9, 5:30] = 1
    bar = np.zeros((40, 40), np.uint8)
    bar[18:22, 10:30] = 1
    path = write_sample(tmp_path / "t.fits.gz", size=40, extra_hdus=truthfile.truth_hdus(spiral, bar, {"arms": 2}))
    gz = gz3d.read_gz3d(path)
    assert np.array_equal(gz.truth.spiral, spiral) and np.array_equal(gz.truth.bar, bar)
    assert gz.truth.params == {"arms": 2}


def test_not_asked_task_reads_as_no_rows(tmp_path):
    gz = gz3d.read_gz3d(write_sample(tmp_path / "n.fits", size=40, bar=[]))
    assert gz.bar == [] and len(gz.spiral) == 5 and gz.bar_counts.sum() == 0


# --- bad files ------------------------------------------------------------------------------------------
def _rewrite(path, edit):
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    hdus = edit(hdus) or hdus
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def _with_json(path, column_hdu, text):
    def edit(hdus):
        old = hdus[column_hdu].data
        cols = [fits.Column(name="classification_id", format="K", array=old["classification_id"]),
                fits.Column(name="time_stamp", format="30A", array=old["time_stamp"]),
                fits.Column(name=gz3d.TASK_COLUMNS[column_hdu], format=f"{len(text)}A",
                            array=np.array([text] * len(old)))]
        hdus[column_hdu] = fits.BinTableHDU.from_columns(cols)
    return _rewrite(path, edit)


def _bad(tmp_path, kind):
    good = write_sample(tmp_path / "good.fits", size=40)
    if kind == "not fits":
        p = tmp_path / "notes.fits"
        p.write_text("this is a shopping list, not a FITS file\n" * 20)
        return p
    if kind == "truncated gzip":
        gzipped = write_sample(tmp_path / "g.fits.gz", size=40)
        data = gzipped.read_bytes()
        gzipped.write_bytes(data[: len(data) // 2])
        return gzipped
    if kind == "truncated FITS":
        data = good.read_bytes()
        good.write_bytes(data[: 2 * len(data) // 3])
        return good
    if kind == "missing HDUs":
        return _rewrite(good, lambda h: h[:9])
    if kind == "2-D image":
        def edit(h):
            h[0] = fits.PrimaryHDU(data=h[0].data[:, :, 0], header=h[0].header)
        return _rewrite(good, edit)
    if kind == "float image":
        def edit(h):
            h[0] = fits.PrimaryHDU(data=h[0].data.astype(np.float32), header=h[0].header)
        return _rewrite(good, edit)
    if kind == "wrong mask shape":
        def edit(h):
            h[4] = fits.ImageHDU(np.zeros((20, 40)))
        return _rewrite(good, edit)
    if kind == "NaN pixels":
        def edit(h):
            data = h[3].data.copy()
            data[3, 3] = np.nan
            h[3] = fits.ImageHDU(data, header=h[3].header)
        return _rewrite(good, edit)
    if kind == "infinite pixels":
        def edit(h):
            data = h[1].data.copy()
            data[0, 0] = np.inf
            h[1] = fits.ImageHDU(data, header=h[1].header)
        return _rewrite(good, edit)
    if kind == "malformed JSON":
        return _with_json(good, 9, "[[[1, 2], [3, 4]")
    if kind == "zero classifications":
        return write_sample(tmp_path / "zero.fits", size=40, spiral=[], bar=[])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("not fits", "not a readable FITS file"),
    ("truncated gzip", "truncated or corrupt gzip"),
    ("truncated FITS", "truncated FITS file"),
    ("missing HDUs", "has 9 HDUs; a GZ3D file has 11"),
    ("2-D image", r"HDU 0 image has shape \(40, 40\), expected \(H, W, 3\)"),
    ("float image", "HDU 0 image has dtype float32, expected uint8"),
    ("wrong mask shape", r"HDU 4 \(bar counts\) has shape \(20, 40\), expected \(40, 40\)"),
    ("NaN pixels", r"HDU 3 \(spiral counts\) contains NaN or infinite pixels"),
    ("infinite pixels", r"HDU 1 \(centre mask\) contains NaN or infinite pixels"),
    ("malformed JSON", "HDU 9 classification 1000: spiral_paths is not valid JSON"),
    ("zero classifications", "zero classifications"),
])
def test_bad_files_raise_a_specific_error(tmp_path, kind, message):
    with pytest.raises(gz3d.GZ3DError, match=message):
        gz3d.read_gz3d(_bad(tmp_path, kind))


def test_malformed_json_can_be_read_leniently(tmp_path):
    path = _with_json(write_sample(tmp_path / "j.fits", size=40), 10, "{not json")
    gz = gz3d.read_gz3d(path, strict_json=False)
    assert set(gz.unusable_tasks) == {"bar"} and "HDU 10" in gz.unusable_tasks["bar"]
    assert len(gz.bar) == 3 and all(c.polygons == [] for c in gz.bar)
    assert gz.bar_counts.sum() > 0  # HDU 4 is still there to fall back on


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(gz3d.GZ3DError, match="no such file"):
        gz3d.read_gz3d(tmp_path / "absent.fits.gz")


def test_bad_polygons_are_dropped_and_counted():
    polygons = [square(1, 1, 5), [[1, 1], [2, 2]], [[0, 0], [5, 0], [500, 5]], "nonsense", [[1, "a"], [2, 3]],
                [[1, 1], [1, 1], [4, 4], [4, 4]], [[-3, -3], [42, -3], [42, 42], [-3, 42]]]
    kept, dropped = gz3d.clean_polygons(polygons, (40, 40))
    assert kept == [[[float(x), float(y)] for x, y in square(1, 1, 5)], [[-3.0, -3.0], [42.0, -3.0], [42.0, 42.0],
                                                                           [-3.0, 42.0]]]
    assert dropped == {"fewer than 3 vertices": 2, "vertex far outside the image": 1,
                       "not a list of [x, y] vertices": 2}


# --- summary table -------------------------------------------------------------------------------------
def test_release_metadata_table_is_keyed_by_file_name(tmp_path):
    cols = [fits.Column(name="file_name", format="40A", array=np.array(["1-100001_127_5555.fits", "x.fits"])),
            fits.Column(name="zooniverse_subject_id", format="K", array=np.array([5555, 6])),
            fits.Column(name="IAUNAME", format="20A", array=np.array(["J1", "J2"]))]
    path = tmp_path / "gz3d_metadata.fits"
    fits.BinTableHDU.from_columns(cols).writeto(path)
    rows = gz3d.read_gz3d_metadata(path)
    key = gz3d.metadata_key("/data/gz3d_1-100001_127_5555.fits.gz")
    assert key == "1-100001_127_5555.fits"
    assert rows[key]["zooniverse_subject_id"] == 5555 and rows[key]["IAUNAME"] == "J1"
    assert gz3d.subject_id_from_name("/data/gz3d_1-100001_127_5555.fits.gz") == 5555


def test_written_json_is_the_release_format(tmp_path):
    path = write_sample(tmp_path / "w.fits", size=40, spiral=spiral_drawings(40, n=2), bar=bar_drawings(40, n=1))
    with fits.open(path) as hdul:
        raw = hdul[9].data["spiral_paths"][0]
        assert json.loads(raw) == spiral_drawings(40, n=2)[0].polygons
        assert list(hdul[10].data.columns.names) == ["classification_id", "time_stamp", "bar_paths"]
        assert list(hdul[6].data.columns.names) == list(gz3d.CLUSTER_COLUMNS) and len(hdul[6].data) == 0


def test_a_drawings_table_without_its_paths_column_is_an_error_or_unusable(tmp_path):
    def edit(hdus):
        old = hdus[9].data
        hdus[9] = fits.BinTableHDU.from_columns([
            fits.Column(name="classification_id", format="K", array=old["classification_id"])])
    path = _rewrite(write_sample(tmp_path / "p.fits", size=40), edit)
    with pytest.raises(gz3d.GZ3DError, match="HDU 9 has no column 'spiral_paths'"):
        gz3d.read_gz3d(path)
    gz = gz3d.read_gz3d(path, strict_json=False)
    assert len(gz.spiral) == 5 and "no column 'spiral_paths'" in gz.unusable_tasks["spiral"]
