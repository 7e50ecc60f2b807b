"""Catalogue tables (CSV, FITS) and the value checks every importer shares."""
import numpy as np
import pytest
from astropy.table import Table as AstropyTable

from evalcore.sky import catalogue as cat


def test_csv_keeps_identifiers_as_text_and_empty_cells_as_none(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name,manga_id,z\nNGC1,1-109223,0.02\nNGC2,,\n\n")
    table = cat.read_table(path)
    assert table.n_rows == 2
    assert table.columns["manga_id"] == ["1-109223", None]
    assert table.columns["z"] == ["0.02", None]


def test_fits_table_columns_are_found_case_insensitively_with_array_elements(tmp_path):
    t = AstropyTable({"NSAID": np.array([7, 8]), "Z": np.array([0.01, 0.03]),
                      "SERSIC_BA": np.array([[0.5, 0.6], [0.7, 0.8]]), "IAUNAME": np.array(["J1", "J2"])})
    t.write(tmp_path / "nsa.fits")
    table = cat.read_table(tmp_path / "nsa.fits")
    assert table.columns[table.find("z")] == [0.01, 0.03]
    assert table.columns[table.find("SERSIC_BA[1]")] == [0.6, 0.8]
    assert table.columns["IAUNAME"] == ["J1", "J2"]
    columns = cat.resolve_columns(table, {"axis_ratio": "sersic_ba[0]"})
    assert columns == {"axis_ratio": "SERSIC_BA[0]", "redshift": "Z", "nsa_id": "NSAID", "iau_name": "IAUNAME"}
    with pytest.raises(cat.CatalogueError, match="no column 'ELPETRO_BA'"):
        table.find("ELPETRO_BA")
    with pytest.raises(cat.CatalogueError, match=r"no element \[5\]"):
        table.find("SERSIC_BA[5]")


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("a,a\n1,2\n", "repeated column names"),
    ("a,b\n1,2,3\n", "line 2 has 3 fields"),
])
def test_malformed_csv_is_refused(tmp_path, content, message):
    (tmp_path / "x.csv").write_text(content)
    with pytest.raises(cat.CatalogueError, match=message):
        cat.read_table(tmp_path / "x.csv")


def test_non_table_fits_and_oversized_files_are_refused(tmp_path):
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((4, 4))).writeto(tmp_path / "img.fits")
    with pytest.raises(cat.CatalogueError, match="has no table"):
        cat.read_table(tmp_path / "img.fits")
    with pytest.raises(cat.CatalogueError, match="more than the limit of 10"):
        cat.read_table(tmp_path / "img.fits", max_bytes=10)


@pytest.mark.parametrize("field, value, expected", [
    ("redshift", "0.05", 0.05), ("redshift", "0", 0.0), ("redshift", None, None),
    ("axis_ratio", "1", 1.0), ("axis_ratio", 0.3, 0.3),
    ("position_angle", "190", 10.0), ("position_angle", -30, 150.0),
    ("ra", "359.5", 359.5), ("dec", "-90", -90.0),
])
def test_values_that_pass(field, value, expected):
    assert cat.check_value(field, value) == expected


@pytest.mark.parametrize("field, value, message", [
    ("redshift", "-0.01", "negative"), ("redshift", "nan", "not a finite number"), ("redshift", "abc", "not a number"),
    ("axis_ratio", "0", r"outside \(0, 1\]"), ("axis_ratio", "1.2", r"outside \(0, 1\]"),
    ("position_angle", "inf", "not a finite number"), ("ra", "360", "outside"), ("dec", "91", "outside"),
    ("pixel_scale", "0", "not positive"),
])
def test_values_that_fail_name_the_problem(field, value, message):
    with pytest.raises(ValueError, match=message):
        cat.check_value(field, value)


def test_identifiers():
    assert cat.check_identifier("nsa_id", "123") == 123
    assert cat.check_identifier("nsa_id", 123.0) == 123
    assert cat.check_identifier("nsa_id", -9999) is None
    assert cat.check_identifier("manga_id", " 1-2 ") == "1-2"
    with pytest.raises(ValueError, match="not an integer"):
        cat.check_identifier("nsa_id", "12.5")


def test_mapping_options():
    assert cat.parse_mapping(["redshift=Z", " axis_ratio = SERSIC_BA "]) == {"redshift": "Z", "axis_ratio": "SERSIC_BA"}
    with pytest.raises(cat.CatalogueError, match="FIELD=COLUMN"):
        cat.parse_mapping(["redshift"])
