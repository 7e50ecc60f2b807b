"""Ordinal model honesty: separated or constant sources are reported as not estimable, never as a number."""
import numpy as np
import pandas as pd

from evalcore.study.stats import ordinal_model, summary_tables
from evalcore.study.stats.differences import NOT_ESTIMABLE, separation
from tests.unit.stats_records import crossed_study


def study(seed: int = 3) -> pd.DataFrame:
    return crossed_study(n_raters=5, n_galaxies=30, rater_sd=0.5, galaxy_sd=0.5, seed=seed, raters_per_galaxy=3)


def set_levels(answers: pd.DataFrame, source: str, levels, seed: int = 0) -> pd.DataFrame:
    out = answers.copy()
    rows = out["source"] == source
    out.loc[rows, "quality"] = np.random.default_rng(seed).choice(levels, rows.sum()).astype(float)
    return out


def table(answers: pd.DataFrame) -> pd.DataFrame:
    return ordinal_model(answers, reference="sparcfire").set_index("source")


def test_complete_separation_is_not_estimable():
    answers = set_levels(set_levels(study(), "sparcfire", [0, 1]), "model", [2, 3], seed=1)
    t = table(answers)
    assert np.isnan(t.loc["model", "log_odds"]) and np.isnan(t.loc["model", "p_value"])
    assert t.loc["model", "note"].startswith(NOT_ESTIMABLE)
    assert "complete separation: every answer of model is above every answer of sparcfire" in t.loc["model", "note"]
    # the other source is still estimated, from the answers that carry information
    assert np.isfinite(t.loc["volunteers", "log_odds"]) and t.loc["volunteers", "note"] == ""
    assert abs(t.loc["volunteers", "log_odds"]) < 10 and t.loc["volunteers", "se_cluster_galaxy"] > 0.05


def test_quasi_complete_separation_is_not_estimable():
    answers = set_levels(set_levels(study(), "sparcfire", [0, 1]), "model", [1, 2, 3], seed=1)
    note = table(answers).loc["model", "note"]
    assert note.startswith(NOT_ESTIMABLE) and "quasi-complete separation" in note and "one level only" in note


def test_a_source_whose_levels_are_all_tied_is_not_estimable():
    answers = study().copy()
    answers.loc[answers["source"] == "model", "quality"] = 3.0
    note = table(answers).loc["model", "note"]
    assert note.startswith(NOT_ESTIMABLE) and "every answer of model is 'Perfectly'" in note
    answers.loc[answers["source"] == "sparcfire", "quality"] = 0.0
    t = table(answers)  # a constant reference leaves no finite odds for anyone
    assert t["log_odds"].isna().all() and t["note"].str.contains("of the reference").all()


def test_separation_through_the_rater_terms_is_found():
    """Marginally the levels overlap (model 1-3, sparcfire 0-2), but within each rater the model is never
    below the arc finder and they meet at one level: with rater terms the estimate runs to infinity."""
    rows = []
    for g in range(20):
        for rater, (model_levels, arc_levels) in {"lenient": ((2, 3), (1, 2)), "strict": ((1, 2), (0, 1))}.items():
            for source, levels in (("model", model_levels), ("sparcfire", arc_levels)):
                rows.append({"study": "s", "rater": rater, "rater_is_staff": False, "item": f"g{g}", "galaxy": f"g{g}",
                             "synthetic": False, "structure": "spiral", "source": source, "panel_position": 1 if
                             source == "model" else 2, "rank": 1, "tie": True,
                             "quality": float(levels[(g + (source == "model")) % 2]), "item_kind": "real",
                             "attention_passed": None, "flagged_bad_image": False, "seconds": 10.0})
    answers = pd.DataFrame(rows)
    part = answers.assign(quality=answers["quality"].astype(float))
    assert "raters' leniency" in separation(part, ["model", "sparcfire"], "sparcfire")["model"]
    assert table(answers).loc["model", "note"].startswith(NOT_ESTIMABLE)


def test_ordinary_data_is_never_called_separated():
    for seed in range(5):
        assert table(study(seed))["note"].eq("").all()


def test_the_summary_and_its_csv_carry_the_note():
    answers = set_levels(set_levels(study(), "sparcfire", [0, 1]), "model", [2, 3], seed=1)
    ordinal = summary_tables(answers, n_boot=10, reference="sparcfire")["ordinal_model"].set_index("source")
    assert ordinal.loc["model", "note"].startswith(NOT_ESTIMABLE) and np.isnan(ordinal.loc["model", "odds_ratio"])
