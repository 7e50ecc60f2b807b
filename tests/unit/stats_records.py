"""Answer records for the statistics tests, built from published counts or from a stated design."""
from __future__ import annotations

import numpy as np
import pandas as pd


def answer_row(*, study="s", rater, galaxy, structure, source, position, rank, quality, tie=False,
               kind="real", passed=None, flagged=False, seconds=30.0, item=None, staff=False):
    return {
        "study": study, "rater": rater, "rater_is_staff": staff, "item": item or f"{galaxy}:{structure}",
        "galaxy": galaxy, "synthetic": False, "structure": structure, "source": source,
        "panel_position": position, "rank": rank, "tie": tie, "quality": quality, "item_kind": kind,
        "attention_passed": passed, "flagged_bad_image": flagged, "seconds": seconds,
    }


def _levels(counts: dict[float, int], n_total: int, rng) -> np.ndarray:
    """A shuffled vector holding each quality level its published number of times, NaN for the rest."""
    values = np.concatenate([np.full(n, q, float) for q, n in counts.items()])
    values = np.concatenate([values, np.full(n_total - len(values), np.nan)])
    assert len(values) == n_total
    return rng.permutation(values)


def reference_study() -> pd.DataFrame:
    """The reference study's evaluations (paper.md), 20 raters crossed with 101 galaxies.

    Spiral (n=367), ranking orders chosen to match every published rank count: model > GZ3D > SpArcFiRe 287,
    GZ3D > model > SpArcFiRe 75, SpArcFiRe > model > GZ3D 5. Quality counts as published (model's two
    "unrated worst" entered as Totally failed, as the authors counted them; GZ3D's unrated 9 left empty;
    SpArcFiRe's were not published). Bar (n=133): model first 90, tie 28, GZ3D first 15; the quality counts
    of the 105 non-tie evaluations as published; the tie evaluations get "Mostly poorly" for both sources
    so that mixing them in would move the shares.
    """
    rng = np.random.default_rng(7)
    rows = []
    orders = [("model", "volunteers", "sparcfire")] * 287 + [("volunteers", "model", "sparcfire")] * 75 \
        + [("sparcfire", "model", "volunteers")] * 5
    orders = [orders[i] for i in rng.permutation(len(orders))]
    quality = {
        "model": _levels({3: 105, 2: 223, 1: 37, 0: 2}, 367, rng),
        "volunteers": _levels({3: 27, 2: 244, 1: 83, 0: 4}, 367, rng),
        "sparcfire": np.full(367, np.nan),
    }
    position = {"sparcfire": 1, "volunteers": 2, "model": 3}  # the study's fixed row order
    for i, order in enumerate(orders):
        for rank, source in enumerate(order, start=1):
            rows.append(answer_row(rater=f"r{i % 20:02d}", galaxy=f"g{i % 101:03d}", structure="spiral",
                                   source=source, position=position[source], rank=rank,
                                   quality=quality[source][i]))
    bar = ["model"] * 90 + ["tie"] * 28 + ["volunteers"] * 15
    bar = [bar[i] for i in rng.permutation(len(bar))]
    untied = [i for i, b in enumerate(bar) if b != "tie"]
    bar_quality = {"model": np.full(133, 1.0), "volunteers": np.full(133, 1.0)}
    bar_quality["model"][untied] = _levels({3: 22, 2: 63, 1: 20, 0: 0}, 105, rng)
    bar_quality["volunteers"][untied] = _levels({3: 7, 2: 44, 1: 38, 0: 16}, 105, rng)
    for i, best in enumerate(bar):
        for source, position in (("volunteers", 1), ("model", 2)):
            rank = 1 if best in ("tie", source) else 2
            rows.append(answer_row(rater=f"r{(i + 7) % 20:02d}", galaxy=f"g{i % 101:03d}", structure="bar",
                                   source=source, position=position, rank=rank, tie=best == "tie",
                                   quality=bar_quality[source][i]))
    return pd.DataFrame(rows)


def crossed_study(*, n_raters: int, n_galaxies: int, rater_sd: float, galaxy_sd: float, seed: int,
                  sources=("model", "volunteers", "sparcfire"), effect=(1.0, 0.4, -1.0),
                  raters_per_galaxy: int | None = None) -> pd.DataFrame:
    """A simulated study: latent quality = source effect + rater leniency + galaxy difficulty + noise,
    cut into the four levels; panel positions rotate over raters; ranks follow the latent quality."""
    rng = np.random.default_rng(seed)
    leniency = rng.normal(0, rater_sd, n_raters)
    difficulty = rng.normal(0, galaxy_sd, n_galaxies)
    rows = []
    k = len(sources)
    for g in range(n_galaxies):
        raters = range(n_raters) if raters_per_galaxy is None else \
            rng.choice(n_raters, size=raters_per_galaxy, replace=False)
        for r in raters:
            latent = np.array(effect[:k]) + leniency[r] + difficulty[g] + rng.normal(0, 0.7, k)
            quality = np.digitize(latent, [-1.0, 0.0, 1.0]).astype(float)
            order = np.argsort(-latent)
            rank = np.empty(k, int)
            rank[order] = np.arange(1, k + 1)
            for j, source in enumerate(sources):
                rows.append(answer_row(rater=f"r{r:02d}", galaxy=f"g{g:03d}", structure="spiral", source=source,
                                       position=(j + r) % k + 1, rank=int(rank[j]), quality=quality[j],
                                       seconds=float(20 + r)))
    return pd.DataFrame(rows)
