"""Audits of the study itself: blinding, per-rater work and agreement, and what was excluded."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from .schema import CANDIDATE_KEYS, EVALUATION_KEYS, outcome_rows, validate_answers, validate_guesses

BLINDING_COLUMNS = ["study", "structure", "n_guesses", "n_dont_know", "n_answered", "n_correct", "n_raters", "chance",
                    "accuracy", "ci_low", "ci_high", "p_value", "verdict"]
CONFUSION_COLUMNS = ["study", "structure", "true_source", "guessed_source", "n", "share_of_true_source"]
# An accuracy this far above chance is what "telling the sources apart" means in practice; an interval
# still reaching that far above chance leaves the question open.
MEANINGFUL_ABOVE_CHANCE = 0.10


def blinding_audit(guesses: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Accuracy of the raters' source guesses against chance (1 / n_choices), per study and structure and
    over each study, with a Wilson interval, a one-sided exact binomial test and a plain-language verdict.

    "Don't know" answers (empty guessed_source) are counted and left out of the accuracy. When n_choices
    varies within a group the chance level is the mean of 1/n_choices (the test is then approximate).
    """
    return _blinding_audit(validate_guesses(guesses), level=level)


def _blinding_audit(guesses: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    g = guesses.copy()
    g["answered"] = g["guessed_source"].notna()
    g["correct"] = g["answered"] & (g["guessed_source"] == g["true_source"])
    g["chance"] = 1.0 / g["n_choices"]
    groups = [(key, part) for key, part in g.groupby(["study", "structure"], sort=True)]
    groups += [((study, "(all structures)"), part) for study, part in g.groupby("study", sort=True)]
    rows = []
    for (study, structure), part in groups:
        answered = part[part["answered"]]
        n, k = len(answered), int(answered["correct"].sum())
        chance = float(answered["chance"].mean()) if n else float("nan")
        row = {"study": study, "structure": structure, "n_guesses": len(part),
               "n_dont_know": int((~part["answered"]).sum()), "n_answered": n, "n_correct": k,
               "n_raters": part["rater"].nunique(), "chance": chance}
        if n == 0:
            rows.append({**row, "accuracy": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                         "verdict": "No source guesses were answered: the blinding could not be checked."})
            continue
        low, high = proportion_confint(k, n, alpha=1 - level, method="wilson")
        p = stats.binomtest(k, n, chance, alternative="greater").pvalue
        rows.append({**row, "accuracy": k / n, "ci_low": low, "ci_high": high, "p_value": p,
                     "verdict": _verdict(k / n, low, high, chance, level)})
    return pd.DataFrame(rows, columns=BLINDING_COLUMNS)


def _verdict(accuracy: float, low: float, high: float, chance: float, level: float) -> str:
    pct = f"{100 * accuracy:.0f}% correct against {100 * chance:.0f}% by chance ({100 * level:.0f}% interval " \
          f"{100 * low:.0f}-{100 * high:.0f}%)"
    if low > chance:
        return (f"Raters could tell the sources apart: {pct}. The blinding did not hold; "
                "read the results with this in mind.")
    if high > chance + MEANINGFUL_ABOVE_CHANCE:
        return f"Too few guesses to be sure: {pct}. Raters may or may not have been able to tell the sources apart."
    return f"No sign that raters could tell the sources apart: {pct}."


def blinding_confusion(guesses: pd.DataFrame) -> pd.DataFrame:
    """How often each true source was guessed as each source (long table; "(don't know)" included)."""
    return _blinding_confusion(validate_guesses(guesses))


def _blinding_confusion(guesses: pd.DataFrame) -> pd.DataFrame:
    g = guesses.assign(guessed_source=guesses["guessed_source"].fillna("(don't know)"))
    out = g.groupby(["study", "structure", "true_source", "guessed_source"]).size().rename("n").reset_index()
    out["share_of_true_source"] = out["n"] / out.groupby(["study", "structure", "true_source"])["n"].transform("sum")
    return out


def per_rater(answers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per rater: evaluations done by kind, flagged ones, time per evaluation (s), and agreement with the
    other raters on the same candidates (mean absolute difference in levels from, and Spearman correlation
    with, the mean of the others). Returns {"raters": ..., "rater_source_means": mean level per source}.
    """
    return _per_rater(validate_answers(answers))


def _per_rater(answers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    df = answers
    evals = df.groupby(EVALUATION_KEYS, sort=False).agg(
        seconds=("seconds", "first"), flagged=("flagged_bad_image", "first"),
        staff=("rater_is_staff", "first")).reset_index()
    kinds = evals.pivot_table(index=["study", "rater"], columns="item_kind", values="seconds", aggfunc="size",
                              fill_value=0).reindex(columns=["real", "repeat", "attention"], fill_value=0)
    kinds.columns = [f"n_{c}_items" for c in kinds.columns]
    out = kinds.join(evals.groupby(["study", "rater"]).agg(
        rater_is_staff=("staff", "any"), n_flagged_items=("flagged", "sum"),
        median_seconds_per_item=("seconds", "median"), mean_seconds_per_item=("seconds", "mean"),
        total_seconds=("seconds", "sum")))
    rated = outcome_rows(df)
    rated = rated[rated["quality"].notna()].copy()
    totals = rated.groupby(CANDIDATE_KEYS)["quality"].agg(["sum", "count"])
    rated = rated.join(totals, on=CANDIDATE_KEYS)
    shared = rated[rated["count"] > 1].copy()
    shared["others_mean"] = (shared["sum"] - shared["quality"]) / (shared["count"] - 1)
    shared["abs_diff"] = (shared["quality"] - shared["others_mean"]).abs()
    agreement = shared.groupby(["study", "rater"]).agg(n_shared_answers=("abs_diff", "size"),
                                                       mean_abs_diff_from_others=("abs_diff", "mean"))
    agreement["spearman_with_others"] = pd.Series(
        {key: _spearman(frame) for key, frame in shared.groupby(["study", "rater"], observed=True)}, dtype=float)
    out = out.join(agreement).reset_index()
    out["n_shared_answers"] = out["n_shared_answers"].fillna(0).astype(int)
    means = rated.groupby(["study", "rater", "structure", "source"]).agg(
        n_rated=("quality", "size"), mean_level=("quality", "mean")).reset_index()
    return {"raters": out, "rater_source_means": means}


def _spearman(frame: pd.DataFrame) -> float:
    if len(frame) < 3 or frame["quality"].nunique() < 2 or frame["others_mean"].nunique() < 2:
        return float("nan")
    return float(stats.spearmanr(frame["quality"], frame["others_mean"]).statistic)


def exclusions(answers: pd.DataFrame, failing_raters: pd.DataFrame) -> pd.DataFrame:
    """Evaluations per study and structure, by kind, and how many the primary analysis leaves out and why.

    failing_raters: the rows of `attention` whose fails_rule is true (columns study, rater).
    """
    return _exclusions(validate_answers(answers), failing_raters)


def _exclusions(answers: pd.DataFrame, failing_raters: pd.DataFrame) -> pd.DataFrame:
    df = answers
    evals = df.groupby(EVALUATION_KEYS, sort=False).agg(structure=("structure", "first"),
                                                       flagged=("flagged_bad_image", "first")).reset_index()
    failing = set(zip(failing_raters["study"], failing_raters["rater"]))
    evals["failing_rater"] = [(s, r) in failing for s, r in zip(evals["study"], evals["rater"])]
    real = evals["item_kind"] == "real"
    evals["primary"] = real & ~evals["flagged"] & ~evals["failing_rater"]
    out = evals.assign(
        real=real, repeat=evals["item_kind"] == "repeat", attention=evals["item_kind"] == "attention",
        flagged_real=real & evals["flagged"], failing_real=real & ~evals["flagged"] & evals["failing_rater"],
    ).groupby(["study", "structure"]).agg(
        n_evaluations=("primary", "size"), n_real=("real", "sum"), n_repeat=("repeat", "sum"),
        n_attention=("attention", "sum"), n_real_flagged_bad_image=("flagged_real", "sum"),
        n_real_from_raters_failing_attention=("failing_real", "sum"), n_primary=("primary", "sum"))
    return out.astype(int).reset_index()
