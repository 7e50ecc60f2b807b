"""The reference study's published figures (paper.md), recomputed from answer records built with its counts."""
import numpy as np
import pytest

from evalcore.study.stats import first_choice, pairwise_wins, quality_levels, quality_summary
from tests.unit.stats_records import reference_study


@pytest.fixture(scope="module")
def answers():
    return reference_study()


def _row(table, **where):
    mask = np.ones(len(table), bool)
    for col, value in where.items():
        mask &= table[col].to_numpy() == value
    assert mask.sum() == 1, where
    return table[mask].iloc[0]


def test_spiral_mostly_well_or_better_shares(answers):
    table = quality_summary(answers, n_boot=50)
    model = _row(table, structure="spiral", source="model")
    assert (model.n_mostly_well_or_better, model.n_rated) == (328, 367)
    assert round(100 * model.share_mostly_well_or_better, 1) == 89.4
    gz3d = _row(table, structure="spiral", source="volunteers")
    # GZ3D keeps its own denominator: 358 rated, 9 unrated
    assert (gz3d.n_mostly_well_or_better, gz3d.n_rated, gz3d.n_unrated) == (271, 358, 9)
    assert round(100 * gz3d.share_mostly_well_or_better, 1) == 75.7
    sparcfire = _row(table, structure="spiral", source="sparcfire")
    assert sparcfire.n_rated == 0 and np.isnan(sparcfire.share_mostly_well_or_better)


def test_level_counts_are_the_published_counts(answers):
    levels = quality_levels(answers)
    spiral_model = levels[(levels.structure == "spiral") & (levels.source == "model")].set_index("level")["n"]
    assert spiral_model.to_dict() == {0: 2, 1: 37, 2: 223, 3: 105}
    gz3d = levels[(levels.structure == "spiral") & (levels.source == "volunteers")].set_index("level")
    assert gz3d["n"].to_dict() == {0: 4, 1: 83, 2: 244, 3: 27}
    assert gz3d["percent"].sum() == pytest.approx(100.0)


def test_bar_shares_over_untied_evaluations(answers):
    untied = quality_summary(answers, untied_only=True, n_boot=50)
    model = _row(untied, structure="bar", source="model")
    gz3d = _row(untied, structure="bar", source="volunteers")
    assert (model.n_rated, gz3d.n_rated) == (105, 105)
    assert round(100 * model.share_mostly_well_or_better, 1) == 81.0
    assert round(100 * gz3d.share_mostly_well_or_better, 1) == 48.6
    # the 28 tied evaluations are what untied_only removes: with them the shares move
    everything = quality_summary(answers, n_boot=50)
    assert _row(everything, structure="bar", source="model").n_rated == 133
    assert round(100 * _row(everything, structure="bar", source="model").share_mostly_well_or_better, 1) != 81.0


def test_first_choice_shares_with_ties(answers):
    table = first_choice(answers, n_boot=50)
    spiral = {o: (r.n, round(100 * r.share, 1)) for o, r in table[table.structure == "spiral"].set_index("outcome")
              .iterrows()}
    assert spiral == {"model": (287, 78.2), "volunteers": (75, 20.4), "sparcfire": (5, 1.4),
                      "(tie for first)": (0, 0.0)}
    bar = {o: (r.n, round(100 * r.share, 1)) for o, r in table[table.structure == "bar"].set_index("outcome")
           .iterrows()}
    assert bar == {"model": (90, 67.7), "(tie for first)": (28, 21.1), "volunteers": (15, 11.3)}
    assert _row(table, structure="bar", outcome="model").n_first_or_tied == 90 + 28


def test_pairwise_win_rates(answers):
    table = pairwise_wins(answers, n_boot=50)
    vs_sparcfire = _row(table, structure="spiral", source="model", other="sparcfire")
    vs_gz3d = _row(table, structure="spiral", source="model", other="volunteers")
    assert (vs_sparcfire.n_above, vs_sparcfire.n) == (362, 367)
    assert round(100 * vs_sparcfire.share_above, 1) == 98.6
    assert (vs_gz3d.n_above, vs_gz3d.n) == (292, 367)
    assert round(100 * vs_gz3d.share_above, 1) == 79.6
    bar = _row(table, structure="bar", source="model", other="volunteers")
    assert (bar.n_above, bar.n_tied, bar.n_below) == (90, 28, 15)
    assert bar.share_above_untied == pytest.approx(90 / 105)


def test_intervals_bracket_the_estimates(answers):
    for table, est, low, high in [
        (quality_summary(answers, n_boot=100), "share_mostly_well_or_better", "share_ci_low", "share_ci_high"),
        (pairwise_wins(answers, n_boot=100), "share_above", "share_above_ci_low", "share_above_ci_high"),
        (first_choice(answers, n_boot=100), "share", "share_ci_low", "share_ci_high"),
    ]:
        rated = table[table[est].notna()]
        assert len(rated)
        assert (rated[low] <= rated[est] + 1e-12).all() and (rated[est] <= rated[high] + 1e-12).all()
        assert (rated[low] >= 0).all() and (rated[high] <= 1).all()
    model = _row(quality_summary(answers, n_boot=200), structure="spiral", source="model")
    assert 0.80 < model.share_ci_low < 0.894 < model.share_ci_high < 0.97
