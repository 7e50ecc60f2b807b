"""``manage.py import_catalogue``: joins by identifier and by sky position, on real CSV and FITS tables."""
import io

import numpy as np
import pytest
from astropy.table import Table
from django.core.management import CommandError, call_command

from segmentation.models import Galaxy, ImportBatch
from segmentation.services.galaxies import galaxy_upsert

ARCSEC = 1 / 3600


def run(path, *args):
    out = io.StringIO()
    call_command("import_catalogue", str(path), "--no-progress", *args, stdout=out)
    return out.getvalue()


def galaxy(name, ra=None, dec=None, **ids):
    g, _ = galaxy_upsert(name=name, match=ids, defaults={"ra": ra, "dec": dec})
    return g


def test_nsa_like_fits_table_joins_by_identifier_and_position_with_mapped_columns(db, tmp_path):
    a = galaxy("A", 150.0, 2.0, manga_id="1-1")
    b = galaxy("B", 151.0, 3.0, nsa_id=77)
    c = galaxy("C", 152.0, 4.0)
    Table({
        "MANGAID": ["1-1", "", ""],
        "NSAID": [-1, 77, -1],
        "RA": [0.0, 0.0, 152.0 + 2 * ARCSEC],
        "DEC": [0.0, 0.0, 4.0],
        "Z": [0.021, 0.034, 0.05],
        "SERSIC_BA": [0.5, 0.9, 0.7],
        "SERSIC_PHI": [45.0, 200.0, 10.0],
    }).write(tmp_path / "nsa.fits")
    out = run(tmp_path / "nsa.fits", "--map", "redshift=Z", "--map", "axis_ratio=SERSIC_BA",
              "--map", "position_angle=SERSIC_PHI", "--id-column", "manga_id=MANGAID", "--id-column", "nsa_id=NSAID")
    assert "imported 0, updated 3, unchanged 0, skipped 0, failed 0" in out
    assert "joined by identifier: 2" in out and "joined by position: 1" in out
    for g, expected in ((a, (0.021, 0.5, 45.0)), (b, (0.034, 0.9, 20.0)), (c, (0.05, 0.7, 10.0))):
        g.refresh_from_db()
        assert (g.redshift, g.axis_ratio, g.position_angle) == pytest.approx(expected)
    a.refresh_from_db()
    assert (a.ra, a.dec) == (150.0, 2.0)  # a catalogue never moves a galaxy
    assert ImportBatch.objects.get(kind="catalogue").summary["updated"] == 3
    out = run(tmp_path / "nsa.fits", "--map", "redshift=Z", "--map", "axis_ratio=SERSIC_BA",
              "--map", "position_angle=SERSIC_PHI", "--id-column", "manga_id=MANGAID", "--id-column", "nsa_id=NSAID")
    assert "updated 0, unchanged 3" in out


def test_unmatched_and_ambiguous_rows_are_reported_with_reasons_and_change_nothing(db, tmp_path):
    galaxy("P1", 10.0, 0.0)
    galaxy("P2", 10.0 + 3 * ARCSEC, 0.0)  # two galaxies 3 arcsec apart
    galaxy("Q", 20.0, 0.0, manga_id="1-5")
    galaxy("R", 30.0, 0.0, nsa_id=9)
    (tmp_path / "cat.csv").write_text(
        "name,ra,dec,manga_id,nsa_id,redshift\n"
        "near both,10.0,0.0,,,0.1\n"
        "far away,50.0,0.0,,,0.1\n"
        "two ids,,,1-5,9,0.1\n"
        "first Q,,,1-5,,0.2\n"
        "second Q,20.0,0.0,,,0.3\n"
        "no pos,,,,,0.1\n"
        "unknown id,,,1-999,,0.1\n"
    )
    out = run(tmp_path / "cat.csv")
    assert "imported 0, updated 0, unchanged 0, skipped 7, failed 0" in out
    lines = {ln.split(": ", 1)[0].split("(")[-1].rstrip(")"): ln for ln in out.splitlines() if "warning row" in ln}
    assert "2 galaxies within 10 arcsec (P1, P2)" in lines["near both"]
    assert "no galaxy within 10 arcsec" in lines["far away"]
    assert "identifiers lead to different galaxies" in lines["two ids"]
    assert "also matched by row 5" in lines["first Q"] and "also matched by row 4" in lines["second Q"]
    assert "unmatched rows: no galaxy with name=no pos; no position" in lines["no pos"]
    assert "no galaxy with manga_id=1-999" in lines["unknown id"]
    assert not Galaxy.objects.filter(redshift__isnull=False).exists()
    out = run(tmp_path / "cat.csv", "--radius", "1")
    assert "updated 1," in out and "(near both)" not in out
    assert Galaxy.objects.get(name="P1").redshift == 0.1  # at 1 arcsec only P1 is near enough


def test_invalid_values_are_reported_and_left_out_while_valid_ones_apply(db, tmp_path):
    g = galaxy("G", manga_id="1-7")
    g.redshift = 0.5
    g.save()
    (tmp_path / "cat.csv").write_text("manga_id,z,ba,pa\n1-7,-0.2,0.4,nan\n")
    out = run(tmp_path / "cat.csv")
    assert "invalid redshift: redshift -0.2 is negative" in out
    assert "invalid position_angle: position_angle is 'nan'" in out
    g.refresh_from_db()
    assert (g.redshift, g.axis_ratio, g.position_angle) == (0.5, 0.4, None)


def test_only_missing_never_overwrites(db, tmp_path):
    g = galaxy("G", manga_id="1-7")
    g.redshift = 0.5
    g.save()
    (tmp_path / "cat.csv").write_text("manga_id,redshift,axis_ratio\n1-7,0.6,0.8\n")
    run(tmp_path / "cat.csv", "--only-missing")
    g.refresh_from_db()
    assert (g.redshift, g.axis_ratio) == (0.5, 0.8)


def test_galaxies_are_created_only_when_asked(db, tmp_path):
    (tmp_path / "cat.csv").write_text("name,ra,dec,redshift\nNEW1,12.0,1.0,0.02\n,13.0,1.0,0.02\n")
    out = run(tmp_path / "cat.csv")
    assert "unmatched rows: 2" in out and not Galaxy.objects.exists()
    out = run(tmp_path / "cat.csv", "--create")
    assert "imported 1" in out and "cannot create a galaxy: the row has no name" in out
    g = Galaxy.objects.get()
    assert (g.name, g.ra, g.dec, g.redshift) == ("NEW1", 12.0, 1.0, 0.02)


def test_unusable_options_and_tables_stop_with_a_clear_message(db, tmp_path):
    (tmp_path / "cat.csv").write_text("name,colour\nA,red\n")
    with pytest.raises(CommandError, match="no column to fill redshift"):
        run(tmp_path / "cat.csv")
    with pytest.raises(CommandError, match="no column 'Z'"):
        run(tmp_path / "cat.csv", "--map", "redshift=Z")
    with pytest.raises(CommandError, match="unknown field 'mass'"):
        run(tmp_path / "cat.csv", "--map", "mass=colour")
    with pytest.raises(CommandError, match="is an identifier"):
        run(tmp_path / "cat.csv", "--map", "manga_id=name")
    (tmp_path / "noid.csv").write_text("z\n0.1\n")
    with pytest.raises(CommandError, match="nothing to join on"):
        run(tmp_path / "noid.csv")
    with pytest.raises(CommandError, match="cannot read the catalogue"):
        run(tmp_path / "absent.csv")


@pytest.mark.slow
def test_a_large_catalogue_joins_by_position_and_lists_a_bounded_number_of_rows(db, tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    for i in range(0, n, 10):  # every tenth catalogue row is one of our galaxies
        galaxy(f"G{i}", float(ra[i]), float(dec[i]))
    Table({"RA": ra, "DEC": dec, "Z": rng.uniform(0, 0.1, n)}).write(tmp_path / "big.fits")
    out = run(tmp_path / "big.fits")
    assert "updated 300" in out and "unmatched rows: 2700" in out
    assert "2500 more unmatched rows not listed" in out
    assert Galaxy.objects.filter(redshift__isnull=True).count() == 0
