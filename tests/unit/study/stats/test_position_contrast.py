"""Position bias as a paired contrast: evaluations as blocks, galaxy-clustered intervals."""
import pandas as pd
import pytest

from evalcore.study.simulate import position_study
from evalcore.study.stats import position_bias, position_contrast, summary_tables, validate_answers
from evalcore.study.stats.position import _position_contrast


def left(table: pd.DataFrame, outcome: str = "quality_level") -> pd.Series:
    return table[(table["outcome"] == outcome) & (table["panel_position"] == 1)].iloc[0]


def test_a_planted_left_panel_advantage_is_detected_and_its_interval_covers_it():
    table = position_contrast(position_study(left_bonus=0.3, seed=4))
    row = left(table)
    assert row["ci_low"] > 0 and row["p_value"] < 0.01  # detected
    assert row["ci_low"] <= 0.3 <= row["ci_high"]  # and the interval covers the planted +0.3 levels
    assert row["effect"] == pytest.approx(0.3, abs=0.12)
    assert left(table, "ranked_first")["ci_low"] > 0  # the better-rated left panel also wins more often
    assert (table["n_galaxies"] == 60).all() and (table["note"] == "").all()


def test_without_an_effect_the_interval_covers_zero():
    table = position_contrast(position_study(left_bonus=0.0, seed=4))
    for outcome in ("quality_level", "ranked_first"):
        for _, row in table[table["outcome"] == outcome].iterrows():
            assert row["ci_low"] <= 0 <= row["ci_high"], (outcome, row["panel_position"])


def test_coverage_and_power_over_simulated_studies():
    """Over 40 simulated studies: the 95% interval covers the planted value about 95% of the time, and the
    effect is found in (nearly) every study, where the marginal per-position intervals rarely separate."""
    covered = {0.3: 0, 0.0: 0}
    detected = separated = 0
    for seed in range(20):
        for bonus in covered:
            answers = validate_answers(position_study(left_bonus=bonus, seed=100 + seed))
            row = left(_position_contrast(answers))
            covered[bonus] += row["ci_low"] <= bonus <= row["ci_high"]
            if bonus:
                detected += row["ci_low"] > 0
                marginal = position_bias(answers, n_boot=50).set_index("panel_position")
                separated += marginal.loc[1, "mean_level_ci_low"] > marginal.loc[[2, 3], "mean_level_ci_high"].max()
    assert covered[0.3] >= 17 and covered[0.0] >= 17
    assert detected >= 18 and separated < detected


def test_the_contrast_removes_an_unbalanced_source_order():
    """If the best source always sat on the left, the marginal rates would blame the position; the model's
    source terms keep it out - provided the positions still vary for each source somewhere."""
    answers = position_study(left_bonus=0.0, seed=9, n_galaxies=120)
    model_left = answers.assign(m=(answers["source"] == "model") & (answers["panel_position"] == 1)).groupby(
        ["rater", "item"])["m"].transform("any")
    others = answers[~model_left]
    kept_others = others[others["item"].isin(others["item"].drop_duplicates().iloc[::6])]
    skewed = pd.concat([answers[model_left], kept_others])  # the model sits on the left in most evaluations
    table = position_contrast(skewed)
    assert left(table)["ci_low"] <= 0 <= left(table)["ci_high"]
    raw = position_bias(skewed, n_boot=20).set_index("panel_position")
    assert raw.loc[1, "mean_level"] > raw.loc[2, "mean_level"] + 0.2  # the marginal view is fooled


def test_degenerate_inputs_say_why():
    one_position = position_study(seed=1).assign(panel_position=1)
    one_position["panel_position"] = one_position.groupby(["rater", "item"]).cumcount() + 1
    answers = one_position[one_position["galaxy"] == "g000"]
    assert (position_contrast(answers)["note"] == "needs evaluations of at least two galaxies").all()


def test_the_summary_has_the_position_contrast_table():
    tables = summary_tables(position_study(seed=2, n_galaxies=20), n_boot=10)
    table = tables["position_contrast"]
    assert set(table["outcome"]) == {"quality_level", "ranked_first"}
    assert set(table["panel_position"]) == {1, 2, 3}
    assert "position_contrast" in set(tables["rules"]["rule"])


def test_a_fixed_panel_order_is_reported_as_confounded():
    """The reference study showed its sources in one fixed row order: position and source cannot be told
    apart, and the table says so instead of giving a number."""
    from tests.unit.stats_records import reference_study

    table = position_contrast(reference_study())
    assert table["effect"].isna().all()
    assert table["note"].str.startswith("not estimable: positions and sources are confounded").all()
