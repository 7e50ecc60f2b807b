"""The hand-laid FITS bytes of the synthetic writers are the bytes astropy writes for the same HDUs."""
import gzip
import io

import numpy as np
import pytest
from astropy.io import fits
from gz3d_samples import bar_drawings, metadata, picture, spiral_drawings
from synthetic_fits_reference import astropy_gz3d_bytes

from evalcore.formats import coords, fitsbytes, gz3d, truthfile
from evalcore.synthetic import survey


@pytest.mark.parametrize("keyword, value, comment", [
    ("NAXIS1", 3, ""), ("BITPIX", -64, "array data type"), ("NAXIS2", 0, "length of dimension 2"),
    ("BIG", 12345678901234, ""), ("SIMPLE", True, "conforms to FITS standard"), ("FLAG", False, ""),
    ("TTYPE1", "ra", ""), ("TTYPE10", "var_ra_dec", ""), ("TFORM3", "26A", ""), ("EMPTY", "", ""),
    ("QUOTE", "it's", "has a quote"), ("OBJECT", "SYN J101010.00+010101.0", ""),
    ("PIXSCALE", 0.262, "arcsec / px"), ("LONG", "x" * 70, "too long for one card"),
])
def test_cards_are_laid_out_as_astropy_lays_them_out(keyword, value, comment):
    ours = fitsbytes.card(keyword, value, comment)
    assert len(ours) % 80 == 0
    assert ours == str(fits.Card(keyword, value, comment)).encode()


def _gz3d_inputs(size, *, spiral=None, bar=None, **meta):
    return dict(image=picture(size), header=gz3d.make_wcs_header(150.0, 2.0, (size, size)),
                metadata=metadata(**meta), spiral=spiral_drawings(size) if spiral is None else spiral,
                bar=bar_drawings(size) if bar is None else bar)


@pytest.mark.parametrize("size, tasks, meta", [
    (101, {}, {}),
    (64, {"bar": []}, {"flagged": True, "note": "it's", "empty": ""}),  # bar not asked, every column type
    (37, {"spiral": [], "bar": []}, {"nsa_id": None}),  # nobody asked (the importer refuses it; the layout holds)
])
def test_gz3d_file_is_byte_identical_to_astropys(tmp_path, size, tasks, meta):
    kwargs = _gz3d_inputs(size, **tasks, **meta)
    truth = truthfile.truth_hdus(np.eye(size, dtype=np.uint8), np.zeros((size, size), np.uint8), {"bar": False})
    expected = astropy_gz3d_bytes(**kwargs, extra_hdus=truth)
    assert gz3d.gz3d_bytes(**kwargs, extra_hdus=truth) == expected
    gz3d.write_gz3d(tmp_path / "a.fits.gz", **kwargs, extra_hdus=truth)
    assert gzip.decompress((tmp_path / "a.fits.gz").read_bytes()) == expected
    gz3d.write_gz3d(tmp_path / "a.fits", **kwargs)
    assert (tmp_path / "a.fits").read_bytes() == astropy_gz3d_bytes(**kwargs)


def test_given_counts_are_written_as_hdu_3_and_4():
    kwargs = _gz3d_inputs(80)
    shape = (80, 80)
    counts = (gz3d.rasterise_task(kwargs["spiral"], shape).polygon_counts,
              gz3d.rasterise_task(kwargs["bar"], shape).polygon_counts)
    assert counts[0].max() == 5 and counts[1].max() == 3  # 4 volunteers, one with two overlapping squares
    raw = gz3d.gz3d_bytes(**kwargs, counts=counts)
    assert raw == gz3d.gz3d_bytes(**kwargs)
    with fits.open(io.BytesIO(raw)) as hdul:
        assert np.array_equal(hdul[3].data, counts[0]) and np.array_equal(hdul[4].data, counts[1])


def test_truth_extensions_are_byte_identical_to_truthfile_and_read_back():
    rng = np.random.default_rng(3)
    spiral, bar = (rng.random((2, 40, 56)) > 0.7).astype(np.uint8)
    params = {"synthetic": True, "bar_length_kpc": 4.25, "chirality": "Z", "images": {"a": {"px": 3}}}
    ours = survey.truth_hdu_bytes(spiral, bar, params)
    assert ours == b"".join(fitsbytes.astropy_hdu_bytes(h) for h in truthfile.truth_hdus(spiral, bar, params))
    with fits.open(io.BytesIO(fitsbytes.image_hdu(np.zeros((2, 2), np.uint8), primary=True) + ours)) as hdul:
        truth = truthfile.read_truth(hdul)
    assert np.array_equal(truth.spiral, spiral) and np.array_equal(truth.bar, bar) and truth.params == params


def test_survey_files_are_canonical_fits_that_astropy_rewrites_unchanged(tmp_path):
    s = survey.SurveySettings(n=2, seed=11, size=72, out=tmp_path / "out")
    survey.make_survey(s, workers=1)
    files = sorted((s.out / "cutouts").glob("*.fits")) + sorted((s.out / "gz3d").glob("*.fits.gz"))
    assert len(files) == 4
    for path in files:
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
        with fits.open(io.BytesIO(raw)) as hdul:
            buf = io.BytesIO()
            hdul.writeto(buf, output_verify="exception")  # a header astropy would fix fails here
            assert len(hdul) == (13 if path.suffix == ".gz" else 3)
            assert buf.getvalue() == raw, path.name
            if path.suffix == ".fits":
                h = hdul[0].header
                assert (h["BANDS"], h["PIXSCALE"], h["BUNIT"], h["SYNTHET"]) == ("grz", 0.262, "nanomaggy", True)
                assert h["OBJECT"].startswith("SYN J") and hdul[0].data.dtype == np.dtype(">f4")


def test_gzip_stream_is_fixed_and_standard():
    data = fitsbytes.image_hdu(np.arange(5000, dtype=np.float64).reshape(50, 100), primary=True)
    packed = survey.gzip_bytes(data)
    assert packed == survey.gzip_bytes(data)
    assert gzip.decompress(packed) == data
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"  # no mtime, no name, OS unknown
    with gzip.open(io.BytesIO(packed)) as fh:
        assert fh.read() == data


def test_image_of_an_unsupported_type_is_refused_by_name():
    with pytest.raises(TypeError, match="complex128"):
        fitsbytes.image_hdu(np.zeros((2, 2), np.complex128))


def test_text_that_is_not_ascii_is_refused():
    # FITS text is ASCII; the polygons' JSON always is (json.dumps escapes), metadata must be
    with pytest.raises(UnicodeEncodeError):
        fitsbytes.table_hdu([("name", "A", ["Galaxie à bras"])], 1)


@pytest.mark.parametrize("ra, dec, size, scale", [(123.4, -45.6, 256, 51.975 / 256), (0.5, 89.0, 97, 0.3),
                                                   (359.9, 2.0, 525, gz3d.RELEASE_PIXEL_SCALE)])
def test_make_wcs_header_can_stand_for_the_celestial_header_of_hdus_1_to_4(ra, dec, size, scale):
    # the survey passes make_wcs_header's output as celestial_header, skipping a WCS round trip
    kwargs = _gz3d_inputs(size)
    kwargs["header"] = gz3d.make_wcs_header(ra, dec, (size, size), scale)
    raw = gz3d.gz3d_bytes(**kwargs, celestial_header=kwargs["header"])
    assert raw == gz3d.gz3d_bytes(**kwargs)
    with fits.open(io.BytesIO(raw)) as hdul:
        assert coords.pixel_scale_arcsec(gz3d.celestial_wcs(hdul[3].header)) == pytest.approx(scale, rel=1e-9)
