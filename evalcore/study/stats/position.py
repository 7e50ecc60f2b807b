"""Position bias as a paired contrast (no Django).

The marginal rate at each panel position (``quality.position_bias``) mixes the position with the sources,
galaxies and raters that happened to be there, and its intervals hardly ever separate even for a sizeable
bias. Here each evaluation (one rater, one item, all its panels) is a block: within it the same rater sees
the same galaxy at every position, so comparing its panels removes the rater's leniency and the galaxy's
difficulty exactly.

Model (per study, structure and outcome), a linear model with one fixed effect per evaluation:

    y[e, p] = alpha[e] + beta[source(e, p)] + gamma[p] + error

fitted by ordinary least squares after removing each evaluation's mean (the within transformation),
with one source and one position as reference. The source terms are there because each evaluation shows
each source at one position: without them an unbalanced design would mix source quality into the
position effect. Reported per position p:

    effect[p] = gamma[p] - mean(gamma[q] for q != p)

"how much higher a panel is rated at position p than the same source would be at the other positions,
in the same evaluation": in quality levels (0-3) for ``quality_level``, in probability of taking first
place (ties included) for ``ranked_first``. Standard errors are cluster-robust with galaxies as clusters
(CR1 sandwich; every evaluation of one galaxy shares the galaxy), intervals and p-values from Student's t
with (galaxies - 1) degrees of freedom.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .schema import EVALUATION_KEYS, outcome_rows, validate_answers

POSITION_CONTRAST_COLUMNS = ["study", "structure", "outcome", "panel_position", "effect", "se_cluster_galaxy",
                             "ci_low", "ci_high", "p_value", "n_evaluations", "n_galaxies", "n_answers", "note"]
OUTCOMES = {"quality_level": "quality", "ranked_first": "rank"}


def position_contrast(answers: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Each panel position's effect on the quality level and on being ranked first, against the other
    positions of the same evaluation and source, per study and structure (see the module docstring)."""
    return _position_contrast(validate_answers(answers), level=level)


def _position_contrast(answers: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    df = outcome_rows(answers)
    rows = []
    for (study, structure), part in df.groupby(["study", "structure"], sort=True, observed=True):
        for outcome, column in OUTCOMES.items():
            data = part[part[column].notna()]
            y = data["quality"].to_numpy(float) if outcome == "quality_level" else \
                (data["rank"].to_numpy(float) == 1).astype(float)
            base = {"study": study, "structure": structure, "outcome": outcome}
            rows += [{**base, **r} for r in paired_position_effects(
                y, evaluation=data.groupby(EVALUATION_KEYS, sort=False, observed=True).ngroup().to_numpy(),
                source=data["source"].astype(str).to_numpy(), position=data["panel_position"].to_numpy(int),
                galaxy=data["galaxy"].astype(str).to_numpy(), level=level)]
    return pd.DataFrame(rows, columns=POSITION_CONTRAST_COLUMNS)


def paired_position_effects(y, *, evaluation, source, position, galaxy, level: float = 0.95) -> list[dict]:
    """The contrast of each position (arrays of one value per answer); one dict per position with effect,
    se_cluster_galaxy, ci_low, ci_high, p_value, n_evaluations, n_galaxies, n_answers and note."""
    y = np.asarray(y, float)
    positions = np.sort(np.unique(position))
    ev_codes, evs = pd.factorize(np.asarray(evaluation))
    # evaluations with a single answer say nothing about positions (their row is all zeros after demeaning)
    size = np.bincount(ev_codes)
    keep = size[ev_codes] > 1
    y, ev_codes = y[keep], pd.factorize(ev_codes[keep])[0]
    source, position, galaxy = np.asarray(source)[keep], np.asarray(position)[keep], np.asarray(galaxy)[keep]
    n_eval, n_gal = int(ev_codes.max() + 1) if len(ev_codes) else 0, len(set(galaxy))
    counts = {"n_evaluations": n_eval, "n_galaxies": n_gal, "n_answers": len(y)}

    def empty(note: str) -> list[dict]:
        return [{"panel_position": int(p), "effect": np.nan, "se_cluster_galaxy": np.nan, "ci_low": np.nan,
                 "ci_high": np.nan, "p_value": np.nan, **counts, "note": note} for p in positions]

    if len(positions) < 2:
        return empty("needs at least two panel positions")
    if n_gal < 2:
        return empty("needs evaluations of at least two galaxies")
    sources = np.sort(np.unique(source))
    x = np.column_stack([(source == s).astype(float) for s in sources[1:]]
                        + [(position == p).astype(float) for p in positions[1:]])
    n_src = len(sources) - 1

    def within(a: np.ndarray) -> np.ndarray:
        means = np.zeros((n_eval,) + a.shape[1:])
        np.add.at(means, ev_codes, a)
        return a - (means / np.bincount(ev_codes, minlength=n_eval).reshape((-1,) + (1,) * (a.ndim - 1)))[ev_codes]

    yw, xw = within(y), within(x)
    xtx = xw.T @ xw
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        return empty("not estimable: positions and sources are confounded in these evaluations")
    bread = np.linalg.inv(xtx)
    beta = bread @ xw.T @ yw
    resid = yw - xw @ beta
    g_codes, _ = pd.factorize(galaxy)
    scores = np.zeros((n_gal, x.shape[1]))
    np.add.at(scores, g_codes, xw * resid[:, None])
    cov = bread @ (scores.T @ scores) @ bread * n_gal / (n_gal - 1)
    gamma_index = np.arange(n_src, x.shape[1])
    t_crit = stats.t.ppf(0.5 + level / 2, n_gal - 1)
    out = []
    m = len(positions)
    for j, p in enumerate(positions):
        # effect = gamma_p - mean of the others, with gamma of the first position fixed at 0
        weights = np.full(m, -1.0 / (m - 1))
        weights[j] = 1.0
        contrast = np.zeros(x.shape[1])
        contrast[gamma_index] = weights[1:]
        effect = float(contrast @ beta)
        se = float(np.sqrt(max(contrast @ cov @ contrast, 0.0)))
        if se == 0.0:
            out.append({"panel_position": int(p), "effect": effect, "se_cluster_galaxy": se, "ci_low": np.nan,
                        "ci_high": np.nan, "p_value": np.nan, **counts,
                        "note": "no variation within evaluations"})
            continue
        out.append({"panel_position": int(p), "effect": effect, "se_cluster_galaxy": se,
                    "ci_low": effect - t_crit * se, "ci_high": effect + t_crit * se,
                    "p_value": float(2 * stats.t.sf(abs(effect / se), n_gal - 1)), **counts, "note": ""})
    return out
