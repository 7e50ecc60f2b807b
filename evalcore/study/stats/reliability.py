"""Agreement: Krippendorff's alpha between raters, weighted kappa within a rater, attention checks."""
from __future__ import annotations

import warnings

import krippendorff
import numpy as np
import pandas as pd
from statsmodels.stats.inter_rater import cohens_kappa

from .bootstrap import DEFAULT_B, DEFAULT_LEVEL, DEFAULT_SEED, _stable_hash
from .schema import CANDIDATE_KEYS, QUALITY_LEVELS, outcome_rows, validate_answers

DEFAULT_MIN_PASS_RATE = 0.8
ALL_SOURCES = "(all sources)"
ALL_STRUCTURES = "(all structures)"


POOLED = "(all raters)"  # the rater label of a row over every rater who keeps to the attention rule


def alpha_from_counts(value_counts: np.ndarray, value_domain=QUALITY_LEVELS, level: str = "ordinal") -> float:
    """Krippendorff's alpha from a (units x values) count matrix, the value domain passed explicitly.

    Units rated by fewer than two raters carry no pairable values and do not change alpha. NaN when no
    unit has two ratings or all pairable values are equal (no disagreement to measure).
    """
    counts = np.asarray(value_counts, float)
    counts = counts[counts.sum(1) >= 2]
    if counts.shape[0] == 0 or np.count_nonzero(counts.sum(0)) < 2:
        return float("nan")
    return float(krippendorff.alpha(value_counts=counts, value_domain=list(value_domain),
                                     level_of_measurement=level))


def krippendorff_alpha(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                       level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Inter-rater Krippendorff's alpha (ordinal, domain 0-3) per study, structure and source, over all
    sources of a structure, and over the whole study (structure "(all structures)"). A unit is one
    candidate (galaxy, structure, source) rated by several raters.

    Interval: percentile bootstrap over galaxies (all of a galaxy's units together). Raters are not
    resampled here: a rater drawn twice would agree perfectly with themself and inflate alpha.
    """
    return _krippendorff_alpha(validate_answers(answers), n_boot=n_boot, seed=seed, level=level)


def _krippendorff_alpha(answers: pd.DataFrame, *, n_boot: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                        level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    df = outcome_rows(answers)
    df = df[df["quality"].notna()]
    counts = (df.groupby(CANDIDATE_KEYS, sort=True)["quality"].value_counts().unstack("quality", fill_value=0)
              .reindex(columns=[float(q) for q in QUALITY_LEVELS], fill_value=0))
    rows = []
    tail = (1 - level) / 2
    groups = [(key, part, True) for key, part in counts.groupby(level=["study", "structure"], sort=True)]
    # plus one row per study over every structure and source (units stay per structure and source)
    groups += [((study, ALL_STRUCTURES), part, False) for study, part in counts.groupby(level="study", sort=True)]
    for (study, structure), part, per_source in groups:
        galaxy_codes, galaxies = pd.factorize(part.index.get_level_values("galaxy"))
        sources = part.index.get_level_values("source")
        rng = np.random.default_rng([seed, _stable_hash(study), _stable_hash(structure)])
        draws = rng.multinomial(len(galaxies), np.full(len(galaxies), 1 / len(galaxies)), size=n_boot)
        for source in [ALL_SOURCES, *(sorted(set(sources)) if per_source else [])]:
            keep = np.ones(len(part), bool) if source == ALL_SOURCES else np.asarray(sources == source)
            matrix, codes = part.to_numpy(float)[keep], galaxy_codes[keep]
            pairable = matrix.sum(1) >= 2
            estimate = alpha_from_counts(matrix)
            reps = _ordinal_alpha(draws @ _galaxy_coincidences(matrix, codes, len(galaxies))) \
                if np.isfinite(estimate) else np.array([])
            reps = reps[np.isfinite(reps)]
            low, high = np.quantile(reps, [tail, 1 - tail]) if reps.size else (np.nan, np.nan)
            rows.append({"study": study, "structure": structure, "source": source, "alpha_ordinal": estimate,
                         "ci_low": low, "ci_high": high, "n_units_pairable": int(pairable.sum()),
                         "n_ratings_pairable": int(matrix[pairable].sum()), "n_boot_valid": int(reps.size)})
    return pd.DataFrame(rows, columns=["study", "structure", "source", "alpha_ordinal", "ci_low", "ci_high",
                                       "n_units_pairable", "n_ratings_pairable", "n_boot_valid"])


def _galaxy_coincidences(value_counts: np.ndarray, galaxy_codes: np.ndarray, n_galaxies: int) -> np.ndarray:
    """Krippendorff's coincidence matrix of each galaxy's units, flattened: (n_galaxies x V*V).

    A unit with m >= 2 ratings adds (n_c n_k - [c == k] n_c) / (m - 1) to cell (c, k). Coincidences add up
    over units, so a bootstrap replicate's matrix is the galaxy-count-weighted sum of these rows.
    """
    n = np.asarray(value_counts, float)
    m = n.sum(1)
    keep = m >= 2
    n, m, codes = n[keep], m[keep], galaxy_codes[keep]
    v = n.shape[1]
    per_unit = (np.einsum("uc,uk->uck", n, n) - n[:, :, None] * np.eye(v)) / (m - 1)[:, None, None]
    out = np.zeros((n_galaxies, v * v))
    np.add.at(out, codes, per_unit.reshape(len(n), v * v))
    return out


def _ordinal_alpha(coincidences: np.ndarray) -> np.ndarray:
    """Ordinal alpha of each row of flattened coincidence matrices (Krippendorff 2011, ordinal metric:
    delta_ck = (sum of marginals n_g for g from c to k - (n_c + n_k) / 2)^2). Checked against the
    krippendorff package in tests; used for the bootstrap, where calling the package 10^3 times is slow."""
    o = np.atleast_2d(coincidences)
    v = int(round(np.sqrt(o.shape[1])))
    o = o.reshape(-1, v, v)
    marg = o.sum(2)
    total = marg.sum(1)
    cum = np.concatenate([np.zeros((len(o), 1)), np.cumsum(marg, 1)], axis=1)
    c, k = np.meshgrid(np.arange(v), np.arange(v), indexing="ij")
    lo, hi = np.minimum(c, k), np.maximum(c, k)
    delta = (cum[:, hi + 1] - cum[:, lo] - (marg[:, c] + marg[:, k]) / 2) ** 2
    observed = (o * delta).sum((1, 2))
    expected = (marg[:, :, None] * marg[:, None, :] * delta).sum((1, 2)) / (total - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - observed / expected


def weighted_kappa(first, second, *, weights: str = "linear") -> float:
    """Cohen's kappa between two ratings of the same candidates on the 0-3 scale, linear or quadratic
    weights, via statsmodels (the table always spans all four levels). NaN when undefined."""
    first, second = np.asarray(first, int), np.asarray(second, int)
    k = len(QUALITY_LEVELS)
    table = np.zeros((k, k))
    np.add.at(table, (first, second), 1)
    if table.sum() == 0:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        value = cohens_kappa(table, wt=weights, return_results=False)
    return float(value) if np.isfinite(value) else float("nan")


def intra_rater(answers: pd.DataFrame, *, min_pass_rate: float = DEFAULT_MIN_PASS_RATE) -> pd.DataFrame:
    """Intra-rater reliability: each rater's repeat items against their own first answer to the same item.

    One row per study and rater plus a pooled row (rater "(all raters)"): pairs of ratings, exact agreement
    share, linear- and quadratic-weighted kappa. Flagged presentations are left out of the pairs.

    The attention rule applies as everywhere else: a rater who passes fewer than ``min_pass_rate`` of their
    attention checks is left out of the pooled row (as out of Krippendorff's alpha and every primary
    figure) and keeps their own row, marked ``fails_attention_rule``.
    """
    df = validate_answers(answers)
    return _intra_rater(df, _attention(df, min_pass_rate=min_pass_rate))


def _intra_rater(answers: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    df = answers
    df = df[~df["flagged_bad_image"] & df["quality"].notna()]
    keys = ["study", "rater", "item", "source"]
    first = df[df["item_kind"] == "real"][[*keys, "quality"]]
    again = df[df["item_kind"] == "repeat"][[*keys, "quality"]]
    pairs = first.merge(again, on=keys, suffixes=("_first", "_repeat"))
    failing = set(zip(*checks.loc[checks["fails_rule"], ["study", "rater"]].to_numpy().T))
    rows = []
    for study, part in pairs.groupby("study", sort=True):
        counted = part[[(study, r) not in failing for r in part["rater"]]]
        for rater, sub in [(POOLED, counted), *part.groupby("rater", sort=True)]:
            a, b = sub["quality_first"].to_numpy(), sub["quality_repeat"].to_numpy()
            rows.append({"study": study, "rater": rater, "n_pairs": len(sub),
                         "exact_agreement": float(np.mean(a == b)) if len(sub) else float("nan"),
                         "kappa_linear": weighted_kappa(a, b, weights="linear"),
                         "kappa_quadratic": weighted_kappa(a, b, weights="quadratic"),
                         "fails_attention_rule": rater != POOLED and (study, rater) in failing})
    return pd.DataFrame(rows, columns=["study", "rater", "n_pairs", "exact_agreement", "kappa_linear",
                                       "kappa_quadratic", "fails_attention_rule"])


def attention(answers: pd.DataFrame, *, min_pass_rate: float = DEFAULT_MIN_PASS_RATE) -> pd.DataFrame:
    """Attention-check pass rate per study and rater; `fails_rule` marks raters below min_pass_rate.

    Every rater of the study is listed, including those who met no check (n_checks 0, never failing).
    """
    return _attention(validate_answers(answers), min_pass_rate=min_pass_rate)


def _attention(answers: pd.DataFrame, *, min_pass_rate: float = DEFAULT_MIN_PASS_RATE) -> pd.DataFrame:
    df = answers
    checks = df[df["item_kind"] == "attention"].groupby(["study", "rater", "item"], sort=True)["attention_passed"] \
        .all().rename("passed").reset_index()
    per_rater = checks.groupby(["study", "rater"]).agg(n_checks=("passed", "size"), n_passed=("passed", "sum"))
    everyone = df[["study", "rater"]].drop_duplicates().set_index(["study", "rater"]).sort_index()
    out = everyone.join(per_rater).fillna({"n_checks": 0, "n_passed": 0}).reset_index()
    out["n_checks"] = out["n_checks"].astype(int)
    out["n_passed"] = out["n_passed"].astype(int)
    out["pass_rate"] = out["n_passed"] / out["n_checks"].where(out["n_checks"] > 0)
    out["fails_rule"] = out["pass_rate"].lt(min_pass_rate).fillna(False).astype(bool)
    return out
