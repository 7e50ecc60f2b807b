"""Ordinal model and rank tests between sources."""
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.miscmodels.ordinal_model import OrderedModel

from evalcore.study.stats import ordinal_model, rank_tests
from tests.unit.stats_records import crossed_study


def test_ordinal_model_equals_statsmodels_fit_on_every_answer_with_galaxy_clusters():
    answers = crossed_study(n_raters=5, n_galaxies=30, rater_sd=0.8, galaxy_sd=0.8, seed=11, raters_per_galaxy=3)
    ours = ordinal_model(answers, reference="sparcfire").set_index("source")
    exog = pd.get_dummies(answers[["rater"]], drop_first=True, dtype=float)
    for source in ("model", "volunteers"):
        exog[f"source_{source}"] = (answers["source"] == source).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = OrderedModel(answers["quality"].astype(int), exog, distr="logit").fit(
            method="bfgs", maxiter=2000, disp=False, cov_type="cluster", cov_kwds={"groups": answers["galaxy"]})
    for source in ("model", "volunteers"):
        name = f"source_{source}"
        assert ours.loc[source, "log_odds"] == pytest.approx(full.params[name], abs=1e-3)
        # the same galaxy-clustered sandwich, up to statsmodels' extra (n-1)/(n-k) small-sample factor
        assert ours.loc[source, "se_cluster_galaxy"] == pytest.approx(full.bse[name], rel=0.1)
    assert ours["converged"].all() and (ours["n_answers"] == len(answers)).all()


def test_ordinal_model_finds_a_real_difference_and_not_an_absent_one():
    effect = crossed_study(n_raters=6, n_galaxies=30, rater_sd=1.0, galaxy_sd=0.5, seed=2, raters_per_galaxy=3,
                           effect=(1.0, 0.0, -1.0))
    table = ordinal_model(effect, reference="volunteers").set_index("source")
    assert table.loc["model", "odds_ratio_ci_low"] > 1 and table.loc["sparcfire", "odds_ratio_ci_high"] < 1
    null = crossed_study(n_raters=6, n_galaxies=30, rater_sd=1.0, galaxy_sd=0.5, seed=2, raters_per_galaxy=3,
                         effect=(0.0, 0.0, 0.0))
    table = ordinal_model(null, reference="volunteers").set_index("source")
    assert (table["odds_ratio_ci_low"] < 1).all() and (table["odds_ratio_ci_high"] > 1).all()


def test_rank_tests_count_and_exclude_incomplete_blocks_and_correct_across_structures():
    spiral = crossed_study(n_raters=4, n_galaxies=20, rater_sd=0.3, galaxy_sd=0.5, seed=4)
    bar = crossed_study(n_raters=4, n_galaxies=20, rater_sd=0.3, galaxy_sd=0.5, seed=5,
                        sources=("model", "volunteers"), effect=(0.5, 0.3)).assign(structure="bar")
    bar["item"] = bar["galaxy"] + ":bar"
    answers = pd.concat([spiral, bar], ignore_index=True)
    # 7 spiral evaluations lose their SpArcFiRe rating; galaxy g000 loses it in all of them
    missing = (answers.structure == "spiral") & (answers.source == "sparcfire") & \
        ((answers.galaxy == "g000") | ((answers.galaxy == "g001") & answers.rater.isin(["r00", "r01", "r02"])))
    answers.loc[missing, "quality"] = np.nan
    result = rank_tests(answers)
    friedman = result["friedman"].set_index("structure")
    assert friedman.loc["spiral", "n_evaluations_excluded_missing"] == 7
    assert friedman.loc["spiral", "n_blocks"] == 19  # g000 has no complete evaluation left
    assert 0 < friedman.loc["spiral", "kendalls_w"] <= 1 and friedman.loc["spiral", "p_value"] < 0.001
    assert np.isnan(friedman.loc["bar", "p_value"]) and "three sources" in friedman.loc["bar", "note"]
    wilcoxon = result["wilcoxon"].set_index(["structure", "source", "other"])
    assert len(wilcoxon) == 4 and (wilcoxon["n_comparisons_in_family"] == 4).all()
    assert wilcoxon.loc[("spiral", "model", "volunteers"), "n_evaluations_excluded_missing"] == 0
    assert wilcoxon.loc[("spiral", "model", "sparcfire"), "n_evaluations_excluded_missing"] == 7
    assert (wilcoxon["p_holm"] >= wilcoxon["p_value"]).all()
    smallest = wilcoxon["p_value"].min()
    assert wilcoxon.loc[wilcoxon["p_value"] == smallest, "p_holm"].iloc[0] == pytest.approx(min(1, 4 * smallest))
    assert wilcoxon.loc[("spiral", "model", "sparcfire"), "rank_biserial"] > 0.8  # model rated higher
    assert wilcoxon.loc[("spiral", "sparcfire", "volunteers"), "rank_biserial"] < -0.8
