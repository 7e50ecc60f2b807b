"""Krippendorff's alpha, weighted kappa, intra-rater reliability and attention checks."""
import krippendorff
import numpy as np
import pandas as pd
import pytest

from evalcore.study.stats import (
    alpha_from_counts,
    attention,
    intra_rater,
    krippendorff_alpha,
    primary_answers,
    summary_tables,
    weighted_kappa,
)
from tests.unit.stats_records import answer_row, crossed_study

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
# values 1-5, missing entries NaN. The text gives alpha = 0.743 (nominal), 0.815 (ordinal), 0.849 (interval).
TEXTBOOK = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])


def _counts(reliability_data, domain):
    return np.array([[np.sum(unit == v) for v in domain] for unit in np.asarray(reliability_data).T])


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_reproduces_krippendorffs_worked_example(level, published):
    alpha = alpha_from_counts(_counts(TEXTBOOK, [1, 2, 3, 4, 5]), value_domain=[1, 2, 3, 4, 5], level=level)
    assert round(alpha, 3) == published


def test_alpha_per_source_matches_the_package_on_the_rater_by_unit_matrix():
    answers = crossed_study(n_raters=6, n_galaxies=25, rater_sd=0.6, galaxy_sd=1.0, seed=3, raters_per_galaxy=4)
    everything = krippendorff_alpha(answers, n_boot=30)
    table = everything[everything.structure == "spiral"].set_index("source")
    for source, expected_rows in [("model", answers.source == "model"), ("(all sources)", slice(None))]:
        sub = answers[expected_rows]
        matrix = sub.pivot_table(index="rater", columns=["galaxy", "source"], values="quality").to_numpy()
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal",
                                      value_domain=[0, 1, 2, 3])
        assert table.loc[source, "alpha_ordinal"] == pytest.approx(expected, rel=1e-9)
        assert table.loc[source, "ci_low"] <= expected <= table.loc[source, "ci_high"]
    # each galaxy was rated by 4 raters, so every candidate is a pairable unit
    assert table.loc["model", "n_units_pairable"] == 25 and table.loc["model", "n_ratings_pairable"] == 100
    study_wide = everything[everything.structure == "(all structures)"].iloc[0]
    assert study_wide.alpha_ordinal == table.loc["(all sources)", "alpha_ordinal"]  # one structure only


def test_alpha_is_one_for_perfect_agreement_and_nan_without_variation():
    rows = [answer_row(rater=f"r{r}", galaxy=f"g{g}", structure="bar", source="model", position=1, rank=1,
                       quality=float(g % 4)) for r in range(3) for g in range(8)]
    table = krippendorff_alpha(pd.DataFrame(rows), n_boot=20)
    assert table["alpha_ordinal"].tolist() == [1.0, 1.0, 1.0]  # bar, bar model, whole study
    same = pd.DataFrame(rows).assign(quality=2.0)
    assert np.isnan(krippendorff_alpha(same, n_boot=20)["alpha_ordinal"]).all()


def _kappa_by_definition(a, b, weight):
    k = 4
    observed = np.zeros((k, k))
    np.add.at(observed, (a, b), 1)
    observed /= observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.indices((k, k))
    w = np.abs(i - j) if weight == "linear" else (i - j) ** 2
    return 1 - (w * observed).sum() / (w * expected).sum()


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_kappa_follows_its_definition(weights):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 80)
    b = np.clip(a + rng.integers(-1, 2, 80), 0, 3)
    assert weighted_kappa(a, b, weights=weights) == pytest.approx(_kappa_by_definition(a, b, weights))
    assert weighted_kappa(a, a, weights=weights) == pytest.approx(1.0)
    # one level only: agreement is perfect but kappa is undefined
    assert np.isnan(weighted_kappa([2, 2, 2], [2, 2, 2]))


def _with_quality_control():
    """Three raters on 12 galaxies; r0 repeats 6 items identically, r1 repeats them reversed; attention
    checks: r0 passes 3/3, r1 2/3, r2 never meets one."""
    rows = []
    for r in range(3):
        for g in range(12):
            q = float((g + r) % 4)
            rows.append(answer_row(rater=f"r{r}", galaxy=f"g{g}", structure="spiral", source="model", position=1,
                                   rank=1, quality=q))
            rows.append(answer_row(rater=f"r{r}", galaxy=f"g{g}", structure="spiral", source="volunteers",
                                   position=2, rank=2, quality=max(q - 1, 0.0)))
            if g < 6 and r < 2:
                again = q if r == 0 else 3.0 - q
                rows.append(answer_row(rater=f"r{r}", galaxy=f"g{g}", structure="spiral", source="model",
                                       position=2, rank=1, quality=again, kind="repeat"))
                rows.append(answer_row(rater=f"r{r}", galaxy=f"g{g}", structure="spiral", source="volunteers",
                                       position=1, rank=2, quality=max(again - 1, 0.0), kind="repeat"))
    for r, outcomes in [(0, [True, True, True]), (1, [True, False, True])]:
        for c, passed in enumerate(outcomes):
            for source, position in (("model", 1), ("volunteers", 2)):
                rows.append(answer_row(rater=f"r{r}", galaxy=f"a{c}", structure="spiral", source=source,
                                       position=position, rank=position, quality=0.0, kind="attention",
                                       passed=passed))
    return pd.DataFrame(rows)


def test_intra_rater_reliability_from_repeats():
    table = intra_rater(_with_quality_control()).set_index("rater")
    assert table.loc["r0", "n_pairs"] == 12 and table.loc["r0", "exact_agreement"] == 1.0
    assert table.loc["r0", "kappa_linear"] == pytest.approx(1.0)
    assert table.loc["r1", "kappa_quadratic"] < 0  # reversed answers disagree systematically
    # r1 fails the attention rule (2 of 3 checks): listed and marked, but not pooled
    assert "r2" not in table.index and table.loc["(all raters)", "n_pairs"] == 12
    assert table["fails_attention_rule"].to_dict() == {"(all raters)": False, "r0": False, "r1": True}
    assert intra_rater(_with_quality_control(), min_pass_rate=0.5).set_index("rater").loc[
        "(all raters)", "n_pairs"] == 24


def test_one_attention_rule_for_alpha_and_the_pooled_intra_rater_row():
    """A rater who fails the attention rule is left out of Krippendorff's alpha and of the pooled
    intra-rater row alike: both equal what the same functions give on the answers without that rater."""
    answers = _with_quality_control()
    tables = summary_tables(answers, n_boot=20)
    without = answers[answers["rater"] != "r1"]
    pooled = tables["intra_rater"].set_index("rater").loc["(all raters)"]
    alone = intra_rater(without).set_index("rater").loc["(all raters)"]
    assert (pooled.n_pairs, pooled.exact_agreement) == (alone.n_pairs, alone.exact_agreement) == (12, 1.0)
    alpha = tables["krippendorff_alpha"].set_index(["structure", "source"])["alpha_ordinal"]
    alpha_without = krippendorff_alpha(without, n_boot=20).set_index(["structure", "source"])["alpha_ordinal"]
    pd.testing.assert_series_equal(alpha, alpha_without)
    everyone = krippendorff_alpha(answers, n_boot=20).set_index(["structure", "source"])["alpha_ordinal"]
    assert not np.allclose(everyone.to_numpy(), alpha.to_numpy())  # r1 would change alpha: the rule matters
    assert "Krippendorff's alpha and the pooled intra-rater row alike" in tables["rules"]["text"].str.cat()


def test_failing_raters_are_listed_and_excluded_from_the_primary_analysis_by_the_stated_rule():
    answers = _with_quality_control()
    checks = attention(answers).set_index("rater")
    assert checks.loc["r0", ["n_checks", "n_passed"]].tolist() == [3, 3]
    assert checks.loc["r1", "pass_rate"] == pytest.approx(2 / 3) and bool(checks.loc["r1", "fails_rule"])
    assert checks.loc["r2", "n_checks"] == 0 and not checks.loc["r2", "fails_rule"]
    assert set(primary_answers(answers)["rater"]) == {"r0", "r2"}
    assert set(primary_answers(answers, min_pass_rate=0.5)["rater"]) == {"r0", "r1", "r2"}
    tables = summary_tables(answers, n_boot=20)
    assert "67%" not in tables["rules"]["text"].str.cat() and "80%" in tables["rules"]["text"].str.cat()
    excluded = tables["exclusions"].iloc[0]
    assert (excluded.n_real, excluded.n_real_from_raters_failing_attention, excluded.n_primary) == (36, 12, 24)
    primary = tables["quality_summary"].set_index("source")
    everyone = tables["quality_summary_all_raters"].set_index("source")
    assert primary.loc["model", "n_raters"] == 2 and everyone.loc["model", "n_raters"] == 3


def test_bootstrap_alpha_from_coincidences_agrees_with_the_package():
    from evalcore.study.stats.reliability import _galaxy_coincidences, _ordinal_alpha

    rng = np.random.default_rng(4)
    counts = rng.multinomial(4, [0.1, 0.3, 0.4, 0.2], size=30)
    counts[::5] = rng.multinomial(2, [0.5, 0.5, 0, 0], size=6)
    galaxies = np.arange(30) // 3
    weights = rng.multinomial(10, np.full(10, 0.1), size=5)
    replicates = _ordinal_alpha(weights @ _galaxy_coincidences(counts, galaxies, 10))
    for w, ours in zip(weights, replicates):
        resampled = np.repeat(counts, w[galaxies], axis=0)
        assert ours == pytest.approx(alpha_from_counts(resampled), rel=1e-9)
    textbook = _counts(TEXTBOOK, [1, 2, 3, 4, 5])
    assert round(_ordinal_alpha(_galaxy_coincidences(textbook, np.zeros(12, int), 1))[0], 3) == 0.815
