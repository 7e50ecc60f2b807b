"""summary_tables on a study with every kind of row: all tables present, exclusions explicit."""
import numpy as np
import pandas as pd
import pytest

from evalcore.study.stats import per_rater, position_bias, summary_tables
from tests.unit.stats_records import crossed_study

TABLES = {"rules", "exclusions", "quality_levels", "quality_summary", "quality_summary_all_raters", "first_choice",
          "pairwise_wins", "ordinal_model", "friedman", "wilcoxon", "krippendorff_alpha", "intra_rater", "attention",
          "position_bias", "position_contrast", "raters", "rater_source_means", "blinding_audit", "blinding_confusion"}


def _full_study():
    answers = crossed_study(n_raters=6, n_galaxies=16, rater_sd=0.4, galaxy_sd=0.6, seed=8)
    real = answers[answers.galaxy.isin(["g000", "g001"])]
    repeats = real.assign(item_kind="repeat")
    checks = real[real.galaxy == "g000"].assign(item_kind="attention", galaxy="a000", item="a000:spiral",
                                                 attention_passed=lambda d: d.rater != "r05", quality=0.0)
    answers = pd.concat([answers, repeats, checks], ignore_index=True)
    flagged = (answers.rater == "r01") & (answers.galaxy == "g003") & (answers.item_kind == "real")
    answers.loc[flagged, "flagged_bad_image"] = True
    guesses = pd.DataFrame([{"study": "s", "rater": f"r{r:02d}", "item": "g002:spiral", "structure": "spiral",
                             "panel_position": p, "true_source": s, "guessed_source": s if r % 2 else "model",
                             "n_choices": 3} for r in range(6) for p, s in enumerate(["model", "volunteers",
                                                                                       "sparcfire"], 1)])
    return answers, guesses


def test_every_table_is_there_and_exclusions_are_counted():
    answers, guesses = _full_study()
    tables = summary_tables(answers, guesses, n_boot=40)
    assert set(tables) == TABLES
    for name, table in tables.items():
        assert isinstance(table, pd.DataFrame) and len(table), name
    excl = tables["exclusions"].iloc[0]
    assert (excl.n_real, excl.n_repeat, excl.n_attention) == (96, 12, 6)
    assert excl.n_real_flagged_bad_image == 1 and excl.n_real_from_raters_failing_attention == 16
    assert excl.n_primary == 96 - 1 - 16
    failing = tables["attention"].query("fails_rule")["rater"].tolist()
    assert failing == ["r05"]
    assert tables["quality_summary"]["n_raters"].max() == 5
    assert tables["quality_summary"]["n_answers"].sum() == 3 * (96 - 1 - 16)
    intra = tables["intra_rater"].set_index("rater")
    assert intra.loc["r05", "fails_attention_rule"] and intra.loc["r05", "n_pairs"] == 6
    assert intra.loc["(all raters)", "n_pairs"] == 36 - 6  # the failing rater's pairs are not pooled
    assert tables["blinding_audit"].set_index("structure").loc["spiral", "n_correct"] == 3 * 3 + 3
    assert tables["raters"].set_index("rater").loc["r01", "n_flagged_items"] == 1


def test_position_bias_is_visible():
    answers = crossed_study(n_raters=6, n_galaxies=30, rater_sd=0.2, galaxy_sd=0.2, seed=9,
                            effect=(0.5, 0.5, 0.5))
    first_panel = answers.panel_position == 1
    answers.loc[first_panel, "quality"] = np.minimum(answers.loc[first_panel, "quality"] + 1, 3)
    table = position_bias(answers, n_boot=100).set_index("panel_position")
    assert table.loc[1, "mean_level"] > table.loc[2, "mean_level"] + 0.5
    assert table.loc[1, "mean_level_ci_low"] > table.loc[2, "mean_level_ci_high"]
    assert table["n_answers"].tolist() == [180, 180, 180]
    assert table["first_rank_rate"].sum() == pytest.approx(1.0)  # ranks follow the latent, not the panel


def test_per_rater_agreement_singles_out_a_random_rater():
    answers = crossed_study(n_raters=6, n_galaxies=25, rater_sd=0.1, galaxy_sd=1.0, seed=10)
    noisy = answers.rater == "r03"
    answers.loc[noisy, "quality"] = np.random.default_rng(0).integers(0, 4, noisy.sum()).astype(float)
    raters = per_rater(answers)["raters"].set_index("rater")
    assert raters["spearman_with_others"].idxmin() == "r03"
    assert raters["mean_abs_diff_from_others"].idxmax() == "r03"
    assert raters.loc["r00", "n_real_items"] == 25 and raters.loc["r02", "median_seconds_per_item"] == 22.0
    means = per_rater(answers)["rater_source_means"]
    assert len(means) == 6 * 3 and means["n_rated"].eq(25).all()


def test_an_empty_study_gives_the_same_tables_with_no_rows():
    answers, guesses = _full_study()
    full = summary_tables(answers, guesses, n_boot=20)
    empty = summary_tables(answers.head(0), guesses.head(0), n_boot=20)
    assert set(empty) == TABLES
    for name, table in empty.items():
        if name != "rules":
            assert len(table) == 0, name
        assert list(table.columns) == list(full[name].columns), name
