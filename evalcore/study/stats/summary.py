"""Every table of the study's statistics in one call (the dashboard's data and the summary CSV)."""
from __future__ import annotations

import numpy as np
import pandas as pd

# the private forms skip re-validating a table summary_tables has already validated once
from .audit import BLINDING_COLUMNS, CONFUSION_COLUMNS, _blinding_audit, _blinding_confusion, _exclusions, _per_rater
from .bootstrap import DEFAULT_B, DEFAULT_LEVEL, DEFAULT_SEED
from .differences import _ordinal_model, _rank_tests
from .position import _position_contrast
from .quality import _position_bias, _quality_levels, _quality_summary
from .rankings import _first_choice, _pairwise_wins
from .reliability import DEFAULT_MIN_PASS_RATE, _attention, _intra_rater, _krippendorff_alpha
from .schema import validate_answers, validate_guesses


def primary_answers(answers: pd.DataFrame, *, min_pass_rate: float = DEFAULT_MIN_PASS_RATE) -> pd.DataFrame:
    """The primary-analysis answers: all rows except those of raters whose attention-check pass rate is
    below min_pass_rate. (Repeats, attention checks and flagged images are dropped by each statistic.)"""
    return _primary_answers(validate_answers(answers), min_pass_rate=min_pass_rate)


def _primary_answers(df: pd.DataFrame, *, min_pass_rate: float) -> pd.DataFrame:
    checks = _attention(df, min_pass_rate=min_pass_rate)
    failing = set(zip(*checks.loc[checks["fails_rule"], ["study", "rater"]].to_numpy().T))
    keep = np.array([(s, r) not in failing for s, r in zip(df["study"], df["rater"])], dtype=bool)
    return df[keep]


def analysis_rules(*, min_pass_rate: float, n_boot: int, seed: int, level: float) -> pd.DataFrame:
    rules = {
        "primary_analysis": "Real items only; items a rater flagged as a bad or ambiguous image are excluded and "
                            "counted (table exclusions); repeats serve intra-rater reliability, attention checks "
                            "the rater rule.",
        "attention_rule": f"Raters passing fewer than {100 * min_pass_rate:.0f}% of their attention checks are "
                          "listed in table attention (fails_rule) and excluded from the primary analysis and "
                          "from every figure pooled over raters, Krippendorff's alpha and the pooled "
                          "intra-rater row alike; their own intra-rater rows stay (fails_attention_rule); "
                          "quality_summary_all_raters repeats the headline shares with them included.",
        "confidence_intervals": f"{100 * level:.0f}% percentile intervals from a two-way bootstrap resampling "
                                f"galaxies and raters (B={n_boot}, seed {seed}); Krippendorff's alpha resamples "
                                "galaxies only.",
        "headline_share": "Share of rated answers at 'Mostly well' or better (levels 2-3 of 0-3); each source "
                          "keeps its own denominator (n_rated); unrated answers are counted in n_unrated.",
        "position_contrast": "Each panel position's effect: the position's coefficient minus the mean of the other "
                             "positions' in a linear model of the level (and of ranking first) with one fixed "
                             "effect per evaluation and one per source; galaxy-clustered (CR1) standard errors, "
                             f"{100 * level:.0f}% t intervals with galaxies - 1 degrees of freedom.",
        "multiple_comparisons": "Holm correction over all Wilcoxon comparisons of all structures and studies; "
                                "separately over the Friedman tests.",
    }
    return pd.DataFrame({"rule": list(rules), "text": list(rules.values())})


def summary_tables(answers: pd.DataFrame, guesses: pd.DataFrame | None = None, *, n_boot: int = DEFAULT_B,
                   seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                   min_pass_rate: float = DEFAULT_MIN_PASS_RATE, reference: str | None = None,
                   ) -> dict[str, pd.DataFrame]:
    """Every statistics table of docs/statistics.md, keyed by table name (stable keys, tidy frames).

    answers and guesses follow docs/statistics.md; guesses may be None or empty (blinding tables empty).
    """
    df = validate_answers(answers)
    guesses = validate_guesses(guesses) if guesses is not None else None
    boot = {"n_boot": n_boot, "seed": seed, "level": level}
    checks = _attention(df, min_pass_rate=min_pass_rate)
    primary = _primary_answers(df, min_pass_rate=min_pass_rate)
    tests = _rank_tests(primary)
    raters = _per_rater(df)
    tables = {
        "rules": analysis_rules(min_pass_rate=min_pass_rate, n_boot=n_boot, seed=seed, level=level),
        "exclusions": _exclusions(df, checks[checks["fails_rule"]]),
        "quality_levels": _quality_levels(primary),
        "quality_summary": _quality_summary(primary, **boot),
        "quality_summary_all_raters": _quality_summary(df, **boot),
        "first_choice": _first_choice(primary, **boot),
        "pairwise_wins": _pairwise_wins(primary, **boot),
        "ordinal_model": _ordinal_model(primary, reference=reference, level=level),
        "friedman": tests["friedman"],
        "wilcoxon": tests["wilcoxon"],
        "krippendorff_alpha": _krippendorff_alpha(primary, **boot),
        "intra_rater": _intra_rater(df, checks),
        "attention": checks,
        "position_bias": _position_bias(primary, **boot),
        "position_contrast": _position_contrast(primary, level=level),
        "raters": raters["raters"],
        "rater_source_means": raters["rater_source_means"],
    }
    if guesses is not None and len(guesses):
        tables["blinding_audit"] = _blinding_audit(guesses, level=level)
        tables["blinding_confusion"] = _blinding_confusion(guesses)
    else:
        tables["blinding_audit"] = pd.DataFrame(columns=BLINDING_COLUMNS)
        tables["blinding_confusion"] = pd.DataFrame(columns=CONFUSION_COLUMNS)
    return tables


def read_summary_csv(path_or_buffer) -> dict[str, pd.DataFrame]:
    """The summary CSV (the dashboard's "summary" download, ``export_ratings --summary``) split back into
    its tables, keyed by the ``table`` column. Columns a table does not have are dropped, so a column that
    is empty in every row of a table is dropped too."""
    frame = pd.read_csv(path_or_buffer)
    return {str(name): part.drop(columns="table").dropna(axis=1, how="all").reset_index(drop=True)
            for name, part in frame.groupby("table", sort=False)}
