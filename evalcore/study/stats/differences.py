"""Differences between sources: a proportional-odds model and rank-based tests with Holm correction.

Ordinal model (per study and structure): cumulative-logit (proportional odds) model of the quality level
on source, with one fixed effect per rater (raters differ in leniency), fitted with statsmodels'
OrderedModel. Galaxies are too many for fixed effects at study scale (incidental-parameter bias, and one
parameter per galaxy), so their dependence is handled by galaxy-clustered (sandwich) standard errors. The
fit runs on the distinct (source, rater, level) patterns with frequency weights: identical likelihood,
hundreds of rows instead of 10^5.

Rank tests: the block is the galaxy. Evaluations missing a rating of a compared source are counted and
excluded; each galaxy's block value per source is the mean level over its remaining evaluations (so every
block is one independent galaxy). Friedman across all sources (needs >= 3 sources; effect size Kendall's
W), Wilcoxon signed-rank for every pair (effect size: matched-pairs rank-biserial correlation). Holm's
correction runs over all Wilcoxon comparisons of all structures and studies together, and separately
over the Friedman tests.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.numdiff import approx_fprime

from .schema import EVALUATION_KEYS, outcome_rows, validate_answers

ORDINAL_COLUMNS = ["study", "structure", "reference", "n_answers", "n_raters", "n_galaxies", "source", "log_odds",
                   "se_cluster_galaxy", "odds_ratio", "odds_ratio_ci_low", "odds_ratio_ci_high", "p_value",
                   "converged", "note"]
FRIEDMAN_COLUMNS = ["study", "structure", "n_evaluations", "sources", "n_evaluations_excluded_missing", "n_blocks",
                    "statistic", "p_value", "kendalls_w", "note"]
WILCOXON_COLUMNS = ["study", "structure", "n_evaluations", "source", "other", "n_evaluations_excluded_missing",
                    "n_blocks", "n_zero_differences", "mean_difference", "median_difference", "statistic", "p_value",
                    "rank_biserial", "note"]


class _FrequencyWeightedOrderedModel(OrderedModel):
    """OrderedModel whose rows stand for `freq` identical answers each."""

    def __init__(self, endog, exog, freq, **kwargs):
        super().__init__(endog, exog, **kwargs)
        self.freq = np.asarray(freq, float)

    def loglike(self, params):
        return float(self.freq @ self.loglikeobs(params))

    # The logistic CDF through scipy.stats costs ~1 ms of argument checking per call; the numerical
    # derivatives call it thousands of times. expit is the same function without the overhead.
    def cdf(self, x):
        return special.expit(x)

    def pdf(self, x):
        p = special.expit(x)
        return p * (1.0 - p)


def ordinal_model(answers: pd.DataFrame, *, reference: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """Log odds of a higher quality level for each source against `reference` (default: the first source
    in alphabetical order), per study and structure, adjusted for rater leniency, galaxy-clustered CIs.

    odds_ratio > 1 means the source gets higher levels than the reference. Groups with fewer than two
    sources or two observed levels are reported with a note instead of estimates.
    """
    return _ordinal_model(validate_answers(answers), reference=reference, level=level)


def _ordinal_model(answers: pd.DataFrame, *, reference: str | None = None, level: float = 0.95) -> pd.DataFrame:
    df = outcome_rows(answers)
    df = df[df["quality"].notna()]
    rows = []
    z = stats.norm.ppf(0.5 + level / 2)
    for (study, structure), part in df.groupby(["study", "structure"], sort=True):
        sources = sorted(part["source"].unique())
        ref = reference if reference in sources else sources[0]
        base = {"study": study, "structure": structure, "reference": ref, "n_answers": len(part),
                "n_raters": part["rater"].nunique(), "n_galaxies": part["galaxy"].nunique()}
        levels = np.sort(part["quality"].unique())
        if len(sources) < 2 or len(levels) < 2:
            rows.append({**base, "note": "needs at least two sources and two observed quality levels"})
            continue
        separated = separation(part, sources, ref)
        group = [{**base, "source": source, "converged": False, "note": f"{NOT_ESTIMABLE}: {reason}"}
                 for source, reason in separated.items()]
        fitted = [s for s in sources if s not in separated]
        if len(fitted) >= 2 and part.loc[part["source"].isin(fitted), "quality"].nunique() < 2:
            group += [{**base, "source": s, "note": "the remaining sources' answers are all at one level"}
                      for s in fitted if s != ref]
        elif len(fitted) >= 2:
            # the separated sources' answers say nothing finite about the others: fit without them
            part = part[part["source"].isin(fitted)]
            fit = _fit_ordinal(part, fitted, ref, np.sort(part["quality"].unique()))
            for source in fitted:
                if source == ref:
                    continue
                name = f"source[{source}]"
                b, se = fit["params"][name], fit["se"][name]
                group.append({**base, "source": source, "log_odds": b, "se_cluster_galaxy": se,
                              "odds_ratio": np.exp(b), "odds_ratio_ci_low": np.exp(b - z * se),
                              "odds_ratio_ci_high": np.exp(b + z * se), "p_value": 2 * stats.norm.sf(abs(b / se)),
                              "converged": fit["converged"], "note": ""})
        rows += sorted(group, key=lambda r: r["source"])
    return pd.DataFrame(rows, columns=ORDINAL_COLUMNS)


NOT_ESTIMABLE = "not estimable: separation"


def separation(part: pd.DataFrame, sources: list[str], ref: str) -> dict[str, str]:
    """The sources whose log odds against ``ref`` have no finite maximum-likelihood estimate in the model
    with rater terms, each with the reason in words; {} when every source is estimable.

    A source is not estimable when its levels are constant (one level only: every answer tied, so its
    position on the scale rests on the other sources' thresholds alone), or when the likelihood keeps
    growing as its coefficient runs to plus or minus infinity: complete separation (every answer of the
    source above, or below, every answer of the reference) or quasi-complete separation (the same, the two
    sharing one boundary level; or through the rater terms). The second is found exactly, as a linear
    programme: is there a direction of (coefficients, thresholds), with the thresholds kept in order, along
    which no answer's probability falls and the source's coefficient changes? (Albert & Anderson 1984,
    Biometrika 71, 1; for cumulative models, the observations' level bounds replace the 0/1 response.)
    """
    from scipy.optimize import linprog

    quality = part["quality"].to_numpy(float)
    labels = {float(q): name for q, name in zip(range(4), ("Totally failed", "Mostly poorly", "Mostly well",
                                                            "Perfectly"))}
    out: dict[str, str] = {}
    by_source = {s: quality[(part["source"] == s).to_numpy()] for s in sources}
    ref_levels = by_source[ref]
    if np.unique(ref_levels).size == 1:
        reason = (f"every answer of the reference ({ref}) is '{labels.get(ref_levels[0], ref_levels[0])}' "
                  "(its levels are constant), so no odds against it are finite")
        return {s: reason for s in sources if s != ref}
    for s in sources:
        if s == ref:
            continue
        mine = by_source[s]
        if np.unique(mine).size == 1:
            out[s] = f"every answer of {s} is '{labels.get(mine[0], mine[0])}' (its levels are constant)"
        elif mine.max() < ref_levels.min() or mine.min() > ref_levels.max():
            side = "below" if mine.max() < ref_levels.min() else "above"
            out[s] = f"complete separation: every answer of {s} is {side} every answer of {ref}"
        elif mine.max() <= ref_levels.min() or mine.min() >= ref_levels.max():
            side = "above" if mine.max() <= ref_levels.min() else "below"
            out[s] = (f"quasi-complete separation: no answer of {s} is {side} an answer of {ref}, the two "
                      "meeting at one level only")
    rest = [s for s in sources if s != ref and s not in out]
    if not rest:
        return out
    # the exact check, over the sources not already explained, with the rater terms
    levels = np.sort(np.unique(quality))
    y = np.searchsorted(levels, quality)
    raters = sorted(part["rater"].unique())
    columns = [part["source"].to_numpy() == s for s in rest] + \
        [part["source"].to_numpy() == s for s in sources if s != ref and s in out] + \
        [part["rater"].to_numpy() == r for r in raters[1:]]
    x = np.column_stack(columns).astype(float)
    patterns, _ = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    px, py = patterns[:, :-1], patterns[:, -1].astype(int)
    n_beta, n_theta = x.shape[1], len(levels) - 1
    constraints = []
    for xi, k in zip(px, py):
        if k <= n_theta - 1:  # P(y <= k) must not fall: eta - dtheta_k <= 0
            row = np.concatenate([xi, np.zeros(n_theta)])
            row[n_beta + k] -= 1
            constraints.append(row)
        if k >= 1:  # P(y <= k - 1) must not rise: dtheta_(k-1) - eta <= 0
            row = np.concatenate([-xi, np.zeros(n_theta)])
            row[n_beta + k - 1] += 1
            constraints.append(row)
    for k in range(n_theta - 1):  # thresholds stay in order
        row = np.zeros(n_beta + n_theta)
        row[n_beta + k], row[n_beta + k + 1] = 1, -1
        constraints.append(row)
    a_ub = np.array(constraints)
    b_ub = np.zeros(len(a_ub))
    for j, s in enumerate(rest):
        for sign, word in ((1, "above"), (-1, "below")):
            objective = np.zeros(n_beta + n_theta)
            objective[j] = -sign
            res = linprog(objective, A_ub=a_ub, b_ub=b_ub, bounds=[(-1, 1)] * (n_beta + n_theta), method="highs")
            if res.status == 0 and -res.fun > 1e-7:
                out[s] = (f"quasi-complete separation: with the raters' leniency taken into account, {s}'s answers "
                          f"can be placed entirely {word} those of {ref} (no finite estimate)")
                break
    return out


def _fit_ordinal(part: pd.DataFrame, sources: list[str], ref: str, levels: np.ndarray) -> dict:
    level_code = {q: i for i, q in enumerate(levels)}
    raters = sorted(part["rater"].unique())
    work = pd.DataFrame({"source": part["source"].to_numpy(), "rater": part["rater"].to_numpy(),
                         "y": part["quality"].map(level_code).to_numpy(), "galaxy": part["galaxy"].to_numpy()})
    pattern_keys = ["source", "rater", "y"]
    work["pattern"] = work.groupby(pattern_keys, sort=True).ngroup()
    patterns = work.groupby(pattern_keys, sort=True).size().rename("freq").reset_index()
    exog = pd.DataFrame(index=patterns.index)
    for source in sources:
        if source != ref:
            exog[f"source[{source}]"] = (patterns["source"] == source).astype(float)
    for rater in raters[1:]:
        exog[f"rater[{rater}]"] = (patterns["rater"] == rater).astype(float)
    endog = pd.Series(pd.Categorical(patterns["y"], categories=range(len(levels)), ordered=True))
    model = _FrequencyWeightedOrderedModel(endog, exog, patterns["freq"].to_numpy(), distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; `converged` is reported instead
        result = model.fit(method="bfgs", maxiter=2000, disp=False, skip_hessian=True)
        params = np.asarray(result.params)
        # cluster-robust (galaxy) sandwich: bread from the weighted Hessian, meat from per-galaxy scores
        score_patterns = approx_fprime(params, model.loglikeobs)
        hessian = model.hessian(params)
    galaxy_codes, galaxies = pd.factorize(work["galaxy"])
    per_galaxy = np.zeros((len(galaxies), len(params)))
    np.add.at(per_galaxy, galaxy_codes, score_patterns[work["pattern"].to_numpy()])
    bread = np.linalg.pinv(-hessian)
    n_clusters = len(galaxies)
    cov = bread @ (per_galaxy.T @ per_galaxy) @ bread * n_clusters / max(n_clusters - 1, 1)
    names = list(model.exog_names) + [f"threshold{i}" for i in range(len(params) - len(model.exog_names))]
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return {"params": dict(zip(names, params)), "se": dict(zip(names, se)),
            "converged": bool(result.mle_retvals.get("converged", False))}


def _evaluation_matrix(df: pd.DataFrame) -> pd.DataFrame:
    # one row per evaluation, one column per source; an unrated or absent candidate is NaN
    return df.set_index([*EVALUATION_KEYS, "galaxy", "source"])["quality"].unstack("source")


def rank_tests(answers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Friedman (all sources) and pairwise Wilcoxon signed-rank tests per study and structure.

    Returns {"friedman": ..., "wilcoxon": ...}; both carry n_blocks (galaxies), the evaluations excluded
    for a missing rating, raw and Holm-adjusted p-values, and effect sizes (Kendall's W; rank-biserial r,
    positive when `source` is rated higher than `other`).
    """
    return _rank_tests(validate_answers(answers))


def _rank_tests(answers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    df = outcome_rows(answers)
    friedman, wilcoxon = [], []
    for (study, structure), part in df.groupby(["study", "structure"], sort=True):
        matrix = _evaluation_matrix(part)
        sources = sorted(matrix.columns)
        base = {"study": study, "structure": structure, "n_evaluations": len(matrix)}
        complete = matrix.dropna()
        blocks = complete.groupby(level="galaxy").mean()
        row = {**base, "sources": " | ".join(sources), "n_evaluations_excluded_missing": len(matrix) - len(complete),
               "n_blocks": len(blocks), "statistic": np.nan, "p_value": np.nan, "kendalls_w": np.nan, "note": ""}
        if len(sources) < 3:
            row["note"] = "Friedman needs at least three sources; see the Wilcoxon test"
        elif len(blocks) < 2:
            row["note"] = "fewer than two complete galaxies"
        elif np.ptp(blocks.to_numpy(), axis=1).max() == 0:
            row["note"] = "every block rates all sources equally"
        else:
            res = stats.friedmanchisquare(*[blocks[s].to_numpy() for s in sources])
            row.update(statistic=res.statistic, p_value=res.pvalue,
                       kendalls_w=res.statistic / (len(blocks) * (len(sources) - 1)))
        friedman.append(row)
        for a, b in itertools.combinations(sources, 2):
            pair = matrix[[a, b]].dropna()
            blocks = pair.groupby(level="galaxy").mean()
            diff = (blocks[a] - blocks[b]).to_numpy()
            nonzero = diff[diff != 0]
            row = {**base, "source": a, "other": b, "n_evaluations_excluded_missing": len(matrix) - len(pair),
                   "n_blocks": len(blocks), "n_zero_differences": int((diff == 0).sum()),
                   "mean_difference": diff.mean() if diff.size else np.nan,
                   "median_difference": np.median(diff) if diff.size else np.nan,
                   "statistic": np.nan, "p_value": np.nan, "rank_biserial": np.nan, "note": ""}
            if diff.size == 0:
                row["note"] = "no galaxy has both sources rated in one evaluation"
            elif nonzero.size == 0:
                row["note"] = "no non-zero differences"
            else:
                res = stats.wilcoxon(nonzero, zero_method="wilcox")
                ranks = stats.rankdata(np.abs(nonzero))
                row.update(statistic=res.statistic, p_value=res.pvalue,
                           rank_biserial=(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
            wilcoxon.append(row)
    return {"friedman": _holm(pd.DataFrame(friedman, columns=FRIEDMAN_COLUMNS)),
            "wilcoxon": _holm(pd.DataFrame(wilcoxon, columns=WILCOXON_COLUMNS))}


def _holm(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["p_holm"] = np.nan
    table["n_comparisons_in_family"] = 0
    if table.empty:
        return table
    tested = table["p_value"].notna()
    if tested.any():
        table.loc[tested, "p_holm"] = multipletests(table.loc[tested, "p_value"], method="holm")[1]
    table["n_comparisons_in_family"] = int(tested.sum())
    return table
