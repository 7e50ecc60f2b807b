"""Quality levels per source (the study's stacked bars) and by panel position (position bias)."""
from __future__ import annotations

import pandas as pd

from .bootstrap import DEFAULT_B, DEFAULT_LEVEL, DEFAULT_SEED, ratio_bootstrap
from .schema import MOSTLY_WELL, QUALITY_LABELS, QUALITY_LEVELS, evaluation_has_tie, outcome_rows, validate_answers

GROUP = ["study", "structure", "source"]


def quality_levels(answers: pd.DataFrame, *, untied_only: bool = False) -> pd.DataFrame:
    """Count and percentage of each quality level per study, structure and source (long table).

    Percentages are over the rated answers of the group (unrated answers have their own count, so each
    source keeps its own denominator, as in the study). untied_only keeps evaluations without any tie
    (the study's bar figures are over its 105 non-tie evaluations).
    """
    return _quality_levels(validate_answers(answers), untied_only=untied_only)


def _quality_levels(answers: pd.DataFrame, *, untied_only: bool = False) -> pd.DataFrame:
    df = _rows(answers, untied_only)
    rated = df[df["quality"].notna()]
    counts = (rated.groupby(GROUP, sort=True)["quality"].value_counts()
              .unstack("quality", fill_value=0).reindex(columns=[float(q) for q in QUALITY_LEVELS], fill_value=0))
    counts = counts.reindex(df.groupby(GROUP, sort=True).size().index, fill_value=0)
    long = counts.stack().rename("n").reset_index().rename(columns={"quality": "level"})
    long["level"] = long["level"].astype(int)
    long["label"] = long["level"].map(QUALITY_LABELS)
    long["n_rated"] = long.groupby(GROUP)["n"].transform("sum")
    long["percent"] = 100.0 * long["n"] / long["n_rated"].where(long["n_rated"] > 0)
    return long[[*GROUP, "level", "label", "n", "n_rated", "percent"]]


def quality_summary(answers: pd.DataFrame, *, untied_only: bool = False, n_boot: int = DEFAULT_B,
                    seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Per study, structure and source: answers, rated and unrated counts, the share rated "Mostly well"
    or better and the mean level (0-3), each with a crossed rater x galaxy bootstrap interval."""
    return _quality_summary(validate_answers(answers), untied_only=untied_only, n_boot=n_boot, seed=seed,
                            level=level)


def _quality_summary(answers: pd.DataFrame, *, untied_only: bool = False, n_boot: int = DEFAULT_B,
                     seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    df = _rows(answers, untied_only).copy()
    df["rated"] = df["quality"].notna().astype(float)
    df["good"] = (df["quality"] >= MOSTLY_WELL).astype(float)
    df["level"] = df["quality"].fillna(0.0)
    share = ratio_bootstrap(df, GROUP, "good", "rated", n_boot=n_boot, seed=seed, level=level)
    mean = ratio_bootstrap(df, GROUP, "level", "rated", n_boot=n_boot, seed=seed, level=level)
    counts = df.groupby(GROUP, sort=True).agg(
        n_answers=("rated", "size"), n_rated=("rated", "sum"), n_mostly_well_or_better=("good", "sum"),
        n_raters=("rater", "nunique"), n_galaxies=("galaxy", "nunique"))
    counts["n_unrated"] = counts["n_answers"] - counts["n_rated"]
    out = counts.reset_index().merge(
        share.rename(columns={"estimate": "share_mostly_well_or_better", "ci_low": "share_ci_low",
                              "ci_high": "share_ci_high"}).drop(columns="n_boot_valid"), on=GROUP, how="left")
    out = out.merge(mean.rename(columns={"estimate": "mean_level", "ci_low": "mean_level_ci_low",
                                         "ci_high": "mean_level_ci_high"}).drop(columns="n_boot_valid"),
                    on=GROUP, how="left")
    for col in ("n_answers", "n_rated", "n_unrated", "n_mostly_well_or_better"):
        out[col] = out[col].astype(int)
    return out


def position_bias(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                  level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Mean quality level, share "Mostly well" or better and first-rank rate (ties included) by panel
    position (1 = first panel), per study and structure, with crossed bootstrap intervals."""
    return _position_bias(validate_answers(answers), n_boot=n_boot, seed=seed, level=level)


def _position_bias(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                   level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    df = outcome_rows(answers).copy()
    keys = ["study", "structure", "panel_position"]
    df["rated"] = df["quality"].notna().astype(float)
    df["good"] = (df["quality"] >= MOSTLY_WELL).astype(float)
    df["level"] = df["quality"].fillna(0.0)
    df["ranked"] = df["rank"].notna().astype(float)
    df["first"] = (df["rank"] == 1).astype(float)
    parts = {
        "mean_level": ("level", "rated"), "share_mostly_well_or_better": ("good", "rated"),
        "first_rank_rate": ("first", "ranked"),
    }
    out = df.groupby(keys, sort=True).agg(n_answers=("rated", "size"), n_rated=("rated", "sum"),
                                          n_ranked=("ranked", "sum")).reset_index()
    for name, (num, den) in parts.items():
        est = ratio_bootstrap(df, keys, num, den, n_boot=n_boot, seed=seed, level=level)
        est = est.rename(columns={"estimate": name, "ci_low": f"{name}_ci_low", "ci_high": f"{name}_ci_high"})
        out = out.merge(est.drop(columns="n_boot_valid"), on=keys, how="left")
    out["panel_position"] = out["panel_position"].astype(int)
    return out


def _rows(answers: pd.DataFrame, untied_only: bool) -> pd.DataFrame:
    df = outcome_rows(answers)
    if untied_only:
        df = df[~evaluation_has_tie(df)]
    return df
