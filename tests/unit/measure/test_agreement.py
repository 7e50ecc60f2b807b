"""Agreement reports and catalogue comparison (Django-free); numbers recomputed here by hand."""
import io
import json
import math
import statistics

import numpy as np
import pytest
from PIL import Image

from evalcore.measure.agreement import (
    CatalogueRow,
    MeasuredSource,
    Pair,
    agreement_report,
    measured_value,
    pair_with_catalogue,
    pair_with_truth,
    pairs_from_table,
    scatter_plot_png,
)
from evalcore.measure.bar import measure_bar

ARCSEC = 1 / 3600
MEASURED = [2.1, 3.9, 6.3, 7.7, 10.4, 11.6, 14.2]
REFERENCE = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]


def test_report_numbers_match_a_hand_computation():
    pairs = [Pair(key=f"g{i}", measured=m, reference=r) for i, (m, r) in enumerate(zip(MEASURED, REFERENCE))]
    pairs.append(Pair(key="lost", measured=None, reference=5.0, reason="not measured: 2 separate regions"))
    pairs.append(Pair(key="no-ref", measured=4.0, reference=float("nan")))
    rep = agreement_report(pairs, quantity="bar length", unit="kpc", source="model")
    diffs = [m - r for m, r in zip(MEASURED, REFERENCE)]
    n = len(diffs)
    assert rep.n == n
    assert rep.bias == pytest.approx(sum(diffs) / n)
    assert rep.scatter == pytest.approx(statistics.stdev(diffs))
    med = statistics.median(diffs)
    assert rep.scatter_robust == pytest.approx(1.4826 * statistics.median([abs(d - med) for d in diffs]))
    assert rep.mean_abs_error == pytest.approx(sum(abs(d) for d in diffs) / n)
    assert rep.median_abs_error == pytest.approx(statistics.median([abs(d) for d in diffs]))
    ratios = [d / r for d, r in zip(diffs, REFERENCE)]
    assert rep.relative_bias == pytest.approx(sum(ratios) / n)
    assert rep.relative_scatter == pytest.approx(statistics.stdev(ratios))
    mm, mr = sum(MEASURED) / n, sum(REFERENCE) / n
    cov = sum((a - mm) * (b - mr) for a, b in zip(MEASURED, REFERENCE))
    r = cov / math.sqrt(sum((a - mm) ** 2 for a in MEASURED) * sum((b - mr) ** 2 for b in REFERENCE))
    assert rep.pearson_r == pytest.approx(r)
    assert rep.robust_slope == pytest.approx(1.0, abs=0.1)
    assert rep.excluded == [{"key": "lost", "reason": "not measured: 2 separate regions"},
                            {"key": "no-ref", "reason": "no reference value"}]
    assert json.loads(json.dumps(rep.to_dict()))["n"] == n


def test_robust_slope_ignores_an_outlier_that_moves_the_least_squares_slope():
    x = np.arange(1.0, 11.0)
    y = 2 * x + 1
    y[-1] = 80.0  # one catastrophic measurement
    rep = agreement_report([Pair(str(i), float(a), float(b)) for i, (a, b) in enumerate(zip(y, x))],
                           quantity="q", unit="")
    ols_slope = np.polyfit(x, y, 1)[0]
    assert abs(ols_slope - 2) > 1.5
    assert rep.robust_slope == pytest.approx(2.0, abs=0.05)
    assert rep.robust_intercept == pytest.approx(1.0, abs=0.3)


def test_few_pairs_give_what_they_can_and_say_why():
    none = agreement_report([Pair("a", None, 1.0, reason="no redshift")], quantity="q", unit="kpc")
    assert none.n == 0 and none.bias is None and "no usable pair" in none.notes[0]
    two = agreement_report([Pair("a", 1.0, 2.0), Pair("b", 3.0, 3.0)], quantity="q", unit="kpc")
    assert two.bias == pytest.approx(-0.5) and two.scatter == pytest.approx(statistics.stdev([-1.0, 0.0]))
    assert two.pearson_r is None and "no correlation" in two.notes[0]


def test_catalogue_pairs_explain_no_match_several_matches_and_missing_redshift():
    catalogue = [
        CatalogueRow("H1", 150.0, 2.0, value=5.0, err=0.5),
        CatalogueRow("H2", 151.0, 2.0, value=7.0),
        CatalogueRow("H3", 151.0 + 3 * ARCSEC, 2.0, value=7.5),  # 3 arcsec from H2
        CatalogueRow("H4", 152.0, 2.0, value=None),
        CatalogueRow("H5", 153.0, 2.0, value=4.0),
        CatalogueRow("H6", 154.0, 2.0, value=6.0),
    ]
    sources = [
        MeasuredSource("good", 150.0 + 2 * ARCSEC, 2.0, value=5.4, err=0.3),
        MeasuredSource("crowded", 151.0, 2.0, value=7.2),
        MeasuredSource("far", 160.0, 2.0, value=3.0),
        MeasuredSource("no-cat-value", 152.0, 2.0, value=3.0),
        MeasuredSource("no-position", None, None, value=3.0),
        MeasuredSource("no-z", 153.0, 2.0, value=None, reason="no redshift: lengths in arcsec only"),
        MeasuredSource("at-15-arcsec", 154.0 + 15 * ARCSEC / math.cos(math.radians(2.0)), 2.0, value=6.1),
    ]
    pairs = {p.key: p for p in pair_with_catalogue(sources, catalogue)}
    assert pairs["good"].usable and pairs["good"].reference == 5.0 and pairs["good"].reference_key == "H1"
    assert pairs["good"].separation_arcsec == pytest.approx(2.0, abs=0.01)
    assert pairs["crowded"].reason == "2 catalogue rows within 10 arcsec (H2, H3)"
    assert pairs["far"].reason == "no catalogue row within 10 arcsec"
    assert pairs["no-cat-value"].reason == "catalogue row H4 has no value"
    assert pairs["no-position"].reason == "no sky position for this galaxy"
    assert pairs["no-z"].reason == "not measured: no redshift: lengths in arcsec only"
    assert pairs["no-z"].reference == 4.0  # it did match; only the measurement is missing
    assert pairs["at-15-arcsec"].reason == "no catalogue row within 10 arcsec"
    wider = {p.key: p for p in pair_with_catalogue(sources, catalogue, radius_arcsec=20)}
    assert wider["at-15-arcsec"].usable and wider["at-15-arcsec"].reference == 6.0
    rep = agreement_report(list(pairs.values()), quantity="bar length", unit="kpc")
    assert rep.n == 1 and {e["key"] for e in rep.excluded} == set(pairs) - {"good"}


def test_bar_measurements_feed_the_comparison_with_their_reasons():
    bar = np.zeros((48, 48))
    bar[10:40, 20:26] = 1.0
    with_z = measure_bar(bar, pixel_scale=0.099, redshift=0.05)
    without_z = measure_bar(bar, pixel_scale=0.099)
    two = bar.copy()
    two[:, 22:24] = 0.0
    split = measure_bar(two, pixel_scale=0.099, redshift=0.05)
    assert measured_value(with_z, "length_kpc") == (with_z.length_kpc, with_z.length_kpc_err, None)
    value, err, reason = measured_value(without_z.to_dict(), "length_kpc")
    assert value is None and "no redshift" in reason
    assert measured_value(without_z, "length_arcsec")[0] == pytest.approx(30 * 0.099)
    assert "2 separate regions" in measured_value(split, "length_kpc")[2]
    with pytest.raises(ValueError, match="no 'length_parsec'"):
        measured_value(with_z, "length_parsec")


def test_synthetic_truth_plays_the_catalogue():
    pairs = pair_with_truth({"s1": (20.5, 1.0, None), "s2": (None, None, "no arm"), "s3": (12.0, 0.5, None)},
                            {"s1": 20.0, "s2": 15.0})
    by_key = {p.key: p for p in pairs}
    assert by_key["s1"].usable and by_key["s1"].reference == 20.0
    assert by_key["s2"].reason == "not measured: no arm"
    assert by_key["s3"].reason == "no true value for this galaxy"


def test_scatter_plot_is_a_png_with_the_sources_in_colour_blind_safe_colours():
    model = agreement_report([Pair(str(i), m, r) for i, (m, r) in enumerate(zip(MEASURED, REFERENCE))],
                             quantity="bar length", unit="kpc", source="model")
    volunteers = agreement_report([Pair(str(i), r * 1.2, r) for i, r in enumerate(REFERENCE)],
                                  quantity="bar length", unit="kpc", source="volunteers")
    png = scatter_plot_png({"model": model, "volunteers": volunteers}, title="Bars vs Hoyle et al. 2011")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    assert img.shape[0] == 500 * 500
    for hex_colour in ("#0072B2", "#E69F00"):  # Okabe-Ito blue and orange, one per source
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img - rgb).sum(axis=1) < 30).sum() > 20
    empty = scatter_plot_png(agreement_report([], quantity="q", unit=""))
    assert empty[:8] == b"\x89PNG\r\n\x1a\n"


def test_pairs_from_a_dataframe_or_records():
    import pandas as pd

    df = pd.DataFrame({"id": ["a", "b", "c"], "model_kpc": [1.0, None, 3.0], "true_kpc": [1.1, 2.0, 2.9],
                       "why": ["", "no redshift", ""]})
    pairs = pairs_from_table(df, key="id", measured="model_kpc", reference="true_kpc", reason="why")
    assert [p.usable for p in pairs] == [True, False, True]
    assert pairs[1].reason == "no redshift" and pairs[2].reference == 2.9
    with pytest.raises(ValueError, match=r"no column\(s\) \['length'\]"):
        pairs_from_table([{"id": "a"}], key="id", measured="length", reference="id")
    with pytest.raises(ValueError, match=r"row 'a', column 'length': 'long' is not a number"):
        pairs_from_table([{"id": "a", "length": "long", "ref": 1}], key="id", measured="length", reference="ref")
