"""Reference catalogues and agreement reports: ``import_reference_catalogue``, ``compare_measurements``,
``compare_with_catalogue`` / ``compare_with_truth``; the report numbers are recomputed here from the
drawn masks (kpc lengths from astropy directly) and the catalogue values."""
import csv
import io

import numpy as np
import pytest
import statsmodels.api as sm
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM
from django.core.management import CommandError, call_command

from evalcore.sky.splits import SPLITS, split_for
from segmentation.models import CatalogueEntry, ExternalCatalogue, Galaxy
from segmentation.services.comparisons import chirality_with_truth, compare_with_catalogue, compare_with_truth
from segmentation.services.masks import mask_store
from segmentation.services.measurements import measure_selection
from tests.factories.measurements import (
    PIXEL_SCALE,
    galaxy_with_image,
    log_spiral_numerators,
    producer,
    ra_in_split,
    store_bar,
)

ARCSEC = 1 / 3600
HEADER = "objid,ra,dec,length_avg,length_stdev\n"


def kpc(length_px, z):
    d_a = FlatLambdaCDM(H0=67.8, Om0=0.308).angular_diameter_distance(z)
    return float((d_a * (length_px * PIXEL_SCALE * u.arcsec).to_value(u.rad)).to_value(u.kpc))


def import_cat(path, *extra):
    out = io.StringIO()
    call_command("import_reference_catalogue", str(path), "--name", "Hoyle2011", "--key", "objid", "--ra", "ra",
                 "--dec", "dec", "--map", "bar_length=length_avg", "--map", "bar_length_err=length_stdev",
                 "--unit", "bar_length=kpc", *extra, stdout=out)
    return out.getvalue()


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_import_is_idempotent_and_keeps_the_mapping(db, tmp_path):
    f = tmp_path / "hoyle.csv"
    f.write_text(HEADER + "H1,10.0,0.0,5.5,0.4\nH2,11.0,0.0,,\n")
    out = import_cat(f, "--citation", "Hoyle et al. 2011, MNRAS 415, 3627")
    assert "created 2, updated 0, unchanged 0, removed 0" in out and "bar_length [kpc]" in out
    cat = ExternalCatalogue.objects.get(name="Hoyle2011")
    assert cat.units == {"bar_length": "kpc"} and cat.citation.startswith("Hoyle")
    assert cat.column_mapping["values"] == {"bar_length": "length_avg", "bar_length_err": "length_stdev"}
    h1, h2 = CatalogueEntry.objects.order_by("key")
    assert (h1.ra, h1.dec, h1.values) == (10.0, 0.0, {"bar_length": 5.5, "bar_length_err": 0.4})
    assert h2.values == {"bar_length": None, "bar_length_err": None}
    assert "created 0, updated 0, unchanged 2" in import_cat(f)
    f.write_text(HEADER + "H1,10.0,0.0,6.0,0.4\n")
    assert "created 0, updated 1, unchanged 0, removed 1" in import_cat(f)
    assert CatalogueEntry.objects.get().values["bar_length"] == 6.0


@pytest.mark.parametrize("content, extra, message", [
    ("objid,ra,dec,length\nH1,1,2,3\n", (), "--map bar_length: .*no column 'length_avg'"),
    (HEADER + "H1,10.0,0.0,5.5,0.4\nH2,11.0,0.0,abc,0.1\n", (), "row 3 length_avg 'abc' is not a number"),
    (HEADER + "H1,10.0,0.0,5.5,0.4\nH1,11.0,0.0,4,0.1\n", (), "row 3: objid H1 repeats row 2"),
    (HEADER + "H1,10.0,0.0,5.5,0.4\n", ("--unit", "width=kpc"), "--unit given for \\['width'\\]"),
])
def test_bad_catalogues_are_refused_with_the_reason_and_import_nothing(db, tmp_path, content, extra, message):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(CommandError, match=message):
        import_cat(f, *extra)
    assert not CatalogueEntry.objects.exists()


def _survey(tmp_path):
    """Four matched galaxies with model and (three) volunteer bars, plus one of each problem case."""
    model, vols = producer("model"), producer("volunteers")
    lengths, zs = [20, 30, 40, 50], [0.03, 0.05, 0.07, 0.04]
    offsets = [0.3, -0.2, 0.5, -0.1]  # kpc, catalogue minus 1.1 x measured
    rows, truth = [], {}
    for i, (n, z) in enumerate(zip(lengths, zs)):
        g, img = galaxy_with_image(f"G{i}", ra=10.0 + i, dec=0.0, redshift=z, axis_ratio=1.0, position_angle=0.0)
        store_bar(g, img, model, slice(30, 34), slice(7, 7 + n))
        if i < 3:
            store_bar(g, img, vols, slice(30, 34), slice(9, 9 + n - 4))
        ref = 1.1 * kpc(n, z) + offsets[i]
        truth[g.name] = (kpc(n, z), kpc(n - 4, z) if i < 3 else None, ref)
        rows.append(f"H{i},{10.0 + i + ARCSEC},{0.0},{ref},0.5")
    far, img = galaxy_with_image("FAR", ra=50.0, dec=0.0)
    store_bar(far, img, model, slice(30, 34), slice(7, 37))
    two, img = galaxy_with_image("TWO", ra=60.0, dec=0.0)
    store_bar(two, img, model, slice(30, 34), slice(7, 37))
    rows += [f"H5,{60.0 + 2 * ARCSEC},0.0,3.0,0.2", f"H6,{60.0 - 3 * ARCSEC},0.0,3.1,0.2"]
    noz, img = galaxy_with_image("NOZ", ra=70.0, dec=0.0, redshift=None, axis_ratio=1.0, position_angle=0.0)
    store_bar(noz, img, model, slice(30, 34), slice(7, 37))
    rows.append(f"H7,{70.0},0.0,4.0,0.2")
    nopos, img = galaxy_with_image("NOPOS", ra=None, dec=None)
    store_bar(nopos, img, model, slice(30, 34), slice(7, 37))
    (tmp_path / "hoyle.csv").write_text(HEADER + "\n".join(rows) + "\n")
    import_cat(tmp_path / "hoyle.csv")
    measure_selection()
    return truth


def _expected_stats(measured, reference):
    m, r = np.array(measured), np.array(reference)
    d = m - r
    fit = sm.RLM(m, sm.add_constant(r), M=sm.robust.norms.HuberT()).fit()
    return {"n": len(d), "bias": d.mean(), "scatter": d.std(ddof=1), "mean_abs_error": np.abs(d).mean(),
            "pearson_r": np.corrcoef(m, r)[0, 1], "robust_slope": fit.params[1]}


def test_catalogue_report_numbers_and_reasons_per_source(db, tmp_path):
    truth = _survey(tmp_path)
    out = io.StringIO()
    call_command("compare_measurements", "--catalogue", "Hoyle2011", "--quantity", "bar_length",
                 "--out", str(tmp_path / "report"), stdout=out)
    stats = {row["source"]: row for row in read_csv(tmp_path / "report" / "Hoyle2011_bar_length_agreement.csv")}
    assert set(stats) == {"model", "volunteers", "sparcfire"}
    for source, pick in (("model", 0), ("volunteers", 1)):
        keys = [k for k, v in truth.items() if v[pick] is not None]
        expected = _expected_stats([truth[k][pick] for k in keys], [truth[k][2] for k in keys])
        for name, value in expected.items():
            assert float(stats[source][name]) == pytest.approx(value, rel=1e-6), (source, name)
    assert stats["sparcfire"]["n"] == "0" and "no usable pair" in stats["sparcfire"]["notes"]
    reasons = {(r["source"], r["key"]): r["reason"]
               for r in read_csv(tmp_path / "report" / "Hoyle2011_bar_length_excluded.csv")}
    assert reasons[("model", "FAR")] == "no catalogue row within 10 arcsec"
    assert reasons[("model", "TWO")] == "2 catalogue rows within 10 arcsec (H5, H6)"
    assert reasons[("model", "NOZ")] == "not measured: no redshift: lengths in arcsec only"
    assert reasons[("model", "NOPOS")] == "no sky position for this galaxy"
    assert reasons[("volunteers", "G3")] == "not measured: no bar mask from this source"
    pairs = read_csv(tmp_path / "report" / "Hoyle2011_bar_length_pairs.csv")
    g0 = next(p for p in pairs if p["source"] == "model" and p["key"] == "G0")
    assert g0["reference_key"] == "H0" and float(g0["separation_arcsec"]) == pytest.approx(1.0, abs=0.01)
    assert float(g0["reference_err"]) == 0.5
    png = (tmp_path / "report" / "Hoyle2011_bar_length_scatter.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "model: N 4 (4 left out)" in out.getvalue()
    # a smaller radius loses the matches 1 arcsec away... and the ambiguity
    reports = compare_with_catalogue(catalogue="Hoyle2011", quantity="bar_length", radius_arcsec=0.5)
    assert reports["model"].n == 0
    assert {e["key"]: e["reason"] for e in reports["model"].excluded}["TWO"] == "no catalogue row within 0.5 arcsec"
    # a split keeps the galaxies of that sky-cell split (training's), whatever their catalogue match
    for split in SPLITS:
        rep = compare_with_catalogue(catalogue="Hoyle2011", quantity="bar_length", split=split)["model"]
        keys = {p["key"] for p in rep.points} | {e["key"] for e in rep.excluded}
        assert keys == {g.name for g in Galaxy.objects.all() if split_for(g.ra, g.dec, name=g.name) == split}


def test_compare_refuses_unknown_catalogue_and_quantity(db, tmp_path):
    with pytest.raises(CommandError, match="no catalogue named 'Nope'"):
        call_command("compare_measurements", "--catalogue", "Nope", "--quantity", "x", "--out", str(tmp_path))
    (tmp_path / "c.csv").write_text(HEADER + "H1,10.0,0.0,5.5,0.4\n")
    import_cat(tmp_path / "c.csv")
    with pytest.raises(CommandError, match="has no quantity 'pitch'"):
        call_command("compare_measurements", "--catalogue", "Hoyle2011", "--quantity", "pitch", "--out", str(tmp_path))


def test_truth_comparison_per_source(db, tmp_path):
    model, vols = producer("model"), producer("volunteers")
    cases = [  # name, bar px, z, true bar kpc, true pitch, chirality, arm contrast
        ("S0", 20, 0.03, 2.0, 20.0, "S", 0.4), ("S1", 30, 0.05, 5.5, 25.0, "Z", 0.5),
        ("S2", 40, 0.06, 9.0, 30.0, "S", 0.05), ("S3", 44, 0.04, 6.0, 20.0, "Z", 0.3),
    ]
    measured = {}
    for i, (name, n, z, bar_kpc, pitch, chir, contrast) in enumerate(cases):
        truth = {"bar_length_kpc": bar_kpc, "pitch_angle_deg": pitch, "chirality": chir, "arm_contrast": contrast}
        ra = ra_in_split("test" if i < 2 else "train", start=20.0 + 2 * i)  # the sky-cell split training uses
        g, img = galaxy_with_image(name, ra=ra, redshift=z, axis_ratio=1.0, position_angle=0.0,
                                   synthetic=True, truth=truth)
        store_bar(g, img, model, slice(30, 34), slice(7, 7 + n))
        mask_store(galaxy=g, image=img, structure="spiral", producer=vols, state="marked",
                   numerators=log_spiral_numerators(pitch_deg=pitch, s_wise=chir == "S"))
        measured[name] = kpc(n, z)
    real, img = galaxy_with_image("REAL", ra=40.0)  # not synthetic: never in a truth report
    store_bar(real, img, model, slice(30, 34), slice(7, 37))
    measure_selection()

    bar = compare_with_truth(quantity="bar_length_kpc")
    expected = _expected_stats([measured[c[0]] for c in cases], [c[3] for c in cases])
    for name, value in expected.items():
        assert getattr(bar["model"], name) == pytest.approx(value, rel=1e-6), name
    assert bar["volunteers"].n == 0 and "REAL" not in {e["key"] for e in bar["model"].excluded}

    pitch = compare_with_truth(quantity="pitch_abs", min_arm_contrast=0.1)
    rep = pitch["volunteers"]
    assert rep.n == 3 and {p["key"] for p in rep.points} == {"S0", "S1", "S3"}
    assert {e["key"]: e["reason"] for e in rep.excluded}["S2"] == "true arm contrast 0.05 below 0.1"
    assert rep.median_abs_error < 1.0
    diffs = [p["measured"] - p["reference"] for p in rep.points]
    assert rep.bias == pytest.approx(np.mean(diffs))
    assert {p["key"]: p["measured_err"] for p in rep.points}["S0"] > 0

    chir = chirality_with_truth()
    assert (chir["volunteers"].n, chir["volunteers"].n_agree) == (4, 4)
    test_only = compare_with_truth(quantity="bar_length_kpc", split="test")["model"]
    assert {p["key"] for p in test_only.points} == {"S0", "S1"} and not test_only.excluded
    assert chirality_with_truth(split="train")["volunteers"].n == 2
    call_command("compare_measurements", "--truth", "--split", "test", "--out", str(tmp_path / "test"),
                 stdout=io.StringIO())
    rows = {r["source"]: r for r in read_csv(tmp_path / "test" / "truth_bar_length_kpc_agreement.csv")}
    assert rows["model"]["n"] == "2" and rows["model"]["n_excluded"] == "0"

    out = io.StringIO()
    call_command("compare_measurements", "--truth", "--min-arm-contrast", "0.1", "--out", str(tmp_path / "t"),
                 stdout=out)
    rows = {r["source"]: r for r in read_csv(tmp_path / "t" / "truth_pitch_abs_agreement.csv")}
    assert rows["volunteers"]["n"] == "3" and float(rows["volunteers"]["bias"]) == pytest.approx(rep.bias)
    chir_rows = {r["source"]: r for r in read_csv(tmp_path / "t" / "truth_chirality.csv")}
    assert chir_rows["volunteers"]["n_agree"] == "4" and chir_rows["model"]["n"] == "0"
    assert (tmp_path / "t" / "truth_bar_length_kpc_scatter.png").read_bytes().startswith(b"\x89PNG")
    assert "chirality volunteers: 4 of 4 agree with the truth" in out.getvalue()


def test_truth_comparison_on_one_image_kind(db, tmp_path):
    """A galaxy with a bar mask on its survey cutout and on its GZ3D subject image counts once per image,
    unless the comparison keeps one kind of image."""
    model = producer("model")
    g, cutout = galaxy_with_image("K0", redshift=0.05, axis_ratio=1.0, position_angle=0.0, synthetic=True,
                                  truth={"bar_length_kpc": 5.0})
    _, subject = galaxy_with_image("K0", redshift=0.05, synthetic=True, truth={"bar_length_kpc": 5.0},
                                   kind="gz3d_subject")
    store_bar(g, cutout, model, slice(30, 34), slice(7, 37))
    store_bar(g, subject, model, slice(30, 34), slice(7, 47))
    measure_selection()

    both = compare_with_truth(quantity="bar_length_kpc")["model"]
    assert {p["key"] for p in both.points} == {"K0 [survey_cutout]", "K0 [gz3d_subject]"}
    one = compare_with_truth(quantity="bar_length_kpc", image_kind="survey_cutout")["model"]
    assert [p["key"] for p in one.points] == ["K0"] and one.points[0]["measured"] == pytest.approx(kpc(30, 0.05))
    # the half-maximum profile of a binary bar runs between the same pixel edges as the recipe's rectangle
    prof = compare_with_truth(quantity="bar_profile_length_kpc", image_kind="survey_cutout")["model"]
    assert prof.points[0]["measured"] == pytest.approx(kpc(30, 0.05)) and prof.points[0]["reference"] == 5.0
    with pytest.raises(ValueError, match="unknown image kind"):
        compare_with_truth(quantity="bar_length_kpc", image_kind="hexagon")
    call_command("compare_measurements", "--truth", "--image-kind", "gz3d_subject", "--out", str(tmp_path),
                 stdout=io.StringIO())
    rows = {r["source"]: r for r in read_csv(tmp_path / "truth_bar_length_kpc_agreement.csv")}
    assert rows["model"]["n"] == "1"
    rows = {r["source"]: r for r in read_csv(tmp_path / "truth_bar_profile_length_kpc_agreement.csv")}
    assert rows["model"]["n"] == "1"
