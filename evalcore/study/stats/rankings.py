"""Rank-based figures: which source was ranked first, and how often source X was ranked above Y."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .bootstrap import DEFAULT_B, DEFAULT_LEVEL, DEFAULT_SEED, ratio_bootstrap
from .schema import EVALUATION_KEYS, outcome_rows, validate_answers

TIE = "(tie for first)"


def first_choice(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                 level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Share of evaluations whose first place went to each source alone, or was shared ("(tie for first)").

    Per study and structure the outcomes of the ranked evaluations add up to 100%; evaluations without
    any rank are counted in n_unranked and left out. n_first_or_tied counts, per source, the evaluations
    where it was first alone or shared first place. Intervals: crossed rater x galaxy bootstrap.
    """
    return _first_choice(validate_answers(answers), n_boot=n_boot, seed=seed, level=level)


def _first_choice(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                  level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    df = outcome_rows(answers)
    firsts = df[df["rank"] == 1]
    per_eval = firsts.groupby(EVALUATION_KEYS, sort=False).agg(
        n_first=("source", "size"), source=("source", "first"), structure=("structure", "first"),
        galaxy=("galaxy", "first"))
    per_eval["outcome"] = np.where(per_eval["n_first"] > 1, TIE, per_eval["source"])
    per_eval = per_eval.reset_index()
    keys = ["study", "structure"]
    n_eval = df.groupby(keys + EVALUATION_KEYS[1:], sort=False).size().groupby(keys).size().rename("n_evaluations")
    # one row per (ranked evaluation, possible outcome) so every outcome gets a numerator, even zero
    possible = df[keys + ["source"]].drop_duplicates().rename(columns={"source": "candidate"})
    possible = pd.concat([possible, df[keys].drop_duplicates().assign(candidate=TIE)], ignore_index=True)
    grid = per_eval[keys + ["rater", "galaxy", "outcome"]].merge(possible, on=keys)
    grid["hit"] = (grid["outcome"] == grid["candidate"]).astype(float)
    grid["one"] = 1.0
    grid = grid.drop(columns="outcome").rename(columns={"candidate": "outcome"})
    est = ratio_bootstrap(grid, keys + ["outcome"], "hit", "one", n_boot=n_boot, seed=seed, level=level)
    counts = grid.groupby(keys + ["outcome"]).agg(n=("hit", "sum"), n_ranked=("one", "sum")).reset_index()
    out = counts.merge(est.drop(columns="n_boot_valid"), on=keys + ["outcome"], how="left")
    out = out.rename(columns={"estimate": "share", "ci_low": "share_ci_low", "ci_high": "share_ci_high"})
    shared = firsts.groupby(keys + ["source"]).size().rename("n_first_or_tied").reset_index()
    out = out.merge(shared.rename(columns={"source": "outcome"}), on=keys + ["outcome"], how="left")
    out.loc[out["outcome"] == TIE, "n_first_or_tied"] = np.nan
    out.loc[(out["outcome"] != TIE) & out["n_first_or_tied"].isna(), "n_first_or_tied"] = 0
    out = out.merge(n_eval.reset_index(), on=keys, how="left")
    out["n_unranked"] = out["n_evaluations"] - out["n_ranked"]
    for col in ("n", "n_ranked", "n_evaluations", "n_unranked"):
        out[col] = out[col].astype(int)
    return out[[*keys, "outcome", "n", "n_ranked", "share", "share_ci_low", "share_ci_high", "n_first_or_tied",
                "n_evaluations", "n_unranked"]]


def pairwise_wins(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                  level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """For every ordered pair of sources (X, Y) in a structure: in how many evaluations X was ranked above Y.

    Only evaluations that ranked both count (n). share_above = n_above / n, ties in the denominator (the
    study's 98.6% and 79.6%); share_above_untied = n_above / (n - n_tied). Intervals: crossed bootstrap.
    """
    return _pairwise_wins(validate_answers(answers), n_boot=n_boot, seed=seed, level=level)


def _pairwise_wins(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                   level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    df = outcome_rows(answers)
    ranked = df.loc[df["rank"].notna(), [*EVALUATION_KEYS, "structure", "galaxy", "source", "rank"]]
    pairs = ranked.merge(ranked, on=[*EVALUATION_KEYS, "structure", "galaxy"], suffixes=("", "_other"))
    pairs = pairs[pairs["source"] != pairs["source_other"]].rename(columns={"source_other": "other"})
    pairs["above"] = (pairs["rank"] < pairs["rank_other"]).astype(float)
    pairs["tied"] = (pairs["rank"] == pairs["rank_other"]).astype(float)
    pairs["untied"] = 1.0 - pairs["tied"]
    pairs["one"] = 1.0
    keys = ["study", "structure", "source", "other"]
    counts = pairs.groupby(keys, sort=True).agg(n=("one", "sum"), n_above=("above", "sum"),
                                                n_tied=("tied", "sum")).reset_index()
    counts["n_below"] = counts["n"] - counts["n_above"] - counts["n_tied"]
    est = ratio_bootstrap(pairs, keys, "above", "one", n_boot=n_boot, seed=seed, level=level)
    untied = ratio_bootstrap(pairs, keys, "above", "untied", n_boot=n_boot, seed=seed, level=level)
    out = counts.merge(est.drop(columns="n_boot_valid").rename(columns={
        "estimate": "share_above", "ci_low": "share_above_ci_low", "ci_high": "share_above_ci_high"}), on=keys)
    out = out.merge(untied.drop(columns="n_boot_valid").rename(columns={
        "estimate": "share_above_untied", "ci_low": "share_above_untied_ci_low",
        "ci_high": "share_above_untied_ci_high"}), on=keys)
    for col in ("n", "n_above", "n_tied", "n_below"):
        out[col] = out[col].astype(int)
    return out
