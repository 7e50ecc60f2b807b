"""Simulated rating studies with known effects, for checking the statistics (no Django).

``position_study``: raters crossed with galaxies, each galaxy rated by ``raters_per_galaxy`` raters, the
sources' panel order rotating over the rows of a Williams design (as ``design.assign`` does). A source's
base level on a galaxy is drawn around its mean and kept within 0-2; a panel shown at position 1 (left)
is then raised one level with probability ``left_bonus``, so the left panel gains exactly ``left_bonus``
levels on average (the ceiling at 3 is never reached from 0-2). Ranks follow the levels, ties sharing the
best rank.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .design import williams_orders

SOURCES = ("model", "volunteers", "sparcfire")
MEAN_LEVEL = {"model": 1.5, "volunteers": 1.0, "sparcfire": 0.6}


def position_study(*, n_galaxies: int = 60, n_raters: int = 8, raters_per_galaxy: int = 3,
                   left_bonus: float = 0.3, seed: int = 0, sources=SOURCES, study: str = "sim",
                   structure: str = "spiral") -> pd.DataFrame:
    """An answers table (docs/statistics.md) with a planted left-panel advantage of ``left_bonus`` levels."""
    rng = np.random.default_rng(seed)
    k = len(sources)
    orders = williams_orders(k)
    leniency = rng.normal(0, 0.4, n_raters)
    rows = []
    for g in range(n_galaxies):
        difficulty = rng.normal(0, 0.5)
        raters = rng.choice(n_raters, size=raters_per_galaxy, replace=False)
        for j, r in enumerate(raters):
            order = orders[(g + j) % len(orders)]  # order[pos] = source index at that position
            latent = np.array([MEAN_LEVEL.get(s, 1.0) for s in sources]) + difficulty + leniency[r] \
                + rng.normal(0, 0.6, k)
            levels = np.clip(np.rint(latent), 0, 2)
            position_of = {src: pos for pos, src in enumerate(order)}
            for s in range(k):
                if position_of[s] == 0 and rng.random() < left_bonus:
                    levels[s] += 1
            ranks = np.array([1 + int(np.sum(levels > levels[s])) for s in range(k)])
            for s, source in enumerate(sources):
                rows.append({
                    "study": study, "rater": f"r{r:02d}", "rater_is_staff": False, "item": f"g{g:03d}:{structure}",
                    "galaxy": f"g{g:03d}", "synthetic": True, "structure": structure, "source": source,
                    "panel_position": position_of[s] + 1, "rank": int(ranks[s]),
                    "tie": bool(np.sum(ranks == ranks[s]) > 1), "quality": float(levels[s]), "item_kind": "real",
                    "attention_passed": None, "flagged_bad_image": False, "seconds": 30.0,
                })
    return pd.DataFrame(rows)
