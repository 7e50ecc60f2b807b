"""How good the simulated crowd's consensus is against the truth: IoU per vote threshold (no Django).

For one galaxy and structure, the consensus at threshold k is the set of pixels that at least k of the N
classifications cover (fraction >= k / N). ``CrowdTally`` accumulates, over a survey, the IoU with the true
mask at every k, so memory does not grow with the number of galaxies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from evalcore.vocabulary import STRUCTURES


def iou_by_threshold(counts: np.ndarray, n: int, truth: np.ndarray) -> np.ndarray:
    """IoU of (counts >= k) with ``truth`` for k = 1..n; (n,) float64. ``counts`` = classifications per pixel."""
    truth = truth.astype(bool)
    flat = counts[truth]
    # pixels at or above k inside the truth, and in all: cumulative histograms from the top
    inside = np.bincount(np.clip(flat, 0, n), minlength=n + 1)[::-1].cumsum()[::-1]
    total = np.bincount(np.clip(counts.ravel(), 0, n), minlength=n + 1)[::-1].cumsum()[::-1]
    n_truth = int(truth.sum())
    k = np.arange(1, n + 1)
    union = n_truth + total[k] - inside[k]
    return np.where(union > 0, inside[k] / np.maximum(union, 1), 1.0)


@dataclass
class StructureTally:
    n_volunteers: int
    galaxies_asked: int = 0
    galaxies_scored: int = 0  # asked and with true pixels
    false_alarms: int = 0  # asked, nothing true, but the consensus (>= 0.5) marked pixels
    blank_drawings: int = 0
    drawings: int = 0
    iou_sums: np.ndarray = field(default=None)
    iou_half_hist: np.ndarray = field(default=None)
    max_fraction_hist: np.ndarray = field(default=None)

    def __post_init__(self):
        self.iou_sums = np.zeros(self.n_volunteers)
        self.iou_half_hist = np.zeros(10, np.int64)
        self.max_fraction_hist = np.zeros(self.n_volunteers + 1, np.int64)


class CrowdTally:
    """Running crowd-versus-truth statistics of a survey (a fixed number of volunteers per galaxy)."""

    def __init__(self, n_volunteers: int):
        self.n = n_volunteers
        self.half = math.ceil(0.5 * n_volunteers)  # smallest k with k / n >= 0.5
        self.tallies = {s: StructureTally(n_volunteers) for s in STRUCTURES}

    def add(self, record: dict) -> None:
        """Add one galaxy's record (``galaxy_record``)."""
        for structure, rec in record.items():
            t = self.tallies[structure]
            if not rec["asked"]:
                continue
            t.galaxies_asked += 1
            t.drawings += rec["drawings"]
            t.blank_drawings += rec["blank"]
            t.max_fraction_hist[rec["max_count"]] += 1
            if rec["truth_pixels"] == 0:
                t.false_alarms += int(rec["marked_at_half"])
                continue
            t.galaxies_scored += 1
            ious = np.asarray(rec["ious"])
            t.iou_sums += ious
            t.iou_half_hist[min(int(ious[self.half - 1] * 10), 9)] += 1

    def summary(self) -> dict:
        """JSON-ready statistics per structure (mean IoU at fraction >= 0.5, best single threshold...)."""
        out = {"volunteers_per_galaxy": self.n}
        for structure, t in self.tallies.items():
            scored = max(t.galaxies_scored, 1)
            mean = t.iou_sums / scored
            best = int(np.argmax(mean)) + 1 if t.galaxies_scored else None
            asked = max(t.galaxies_asked, 1)
            out[structure] = {
                "galaxies_asked": t.galaxies_asked,
                "galaxies_scored": t.galaxies_scored,
                "mean_iou_at_half": round(float(mean[self.half - 1]), 4) if t.galaxies_scored else None,
                "best_threshold": round(best / self.n, 4) if best else None,
                "mean_iou_at_best_threshold": round(float(mean[best - 1]), 4) if best else None,
                "mean_iou_by_threshold": {f"{k}/{self.n}": round(float(mean[k - 1]), 4) for k in range(1, self.n + 1)}
                if t.galaxies_scored else {},
                "iou_at_half_histogram": t.iou_half_hist.tolist(),
                "blank_drawing_fraction": round(t.blank_drawings / max(t.drawings, 1), 4),
                "galaxies_with_max_fraction_below_1": round(
                    float(t.max_fraction_hist[:self.n].sum()) / asked, 4),
                "median_max_fraction": _median_from_hist(t.max_fraction_hist, self.n),
                "false_alarms_without_truth": t.false_alarms,
            }
        return out


def _median_from_hist(hist: np.ndarray, n: int) -> float | None:
    total = int(hist.sum())
    if not total:
        return None
    k = int(np.searchsorted(np.cumsum(hist), (total + 1) / 2))
    return round(k / n, 4)


def galaxy_record(counts: dict, n: int, truth: dict, drawings: dict) -> dict:
    """One galaxy's contribution. ``counts[s]``: classifications per pixel or None (not asked);
    ``truth[s]``: 0/1 mask; ``drawings[s]``: the classifications (to count blank ones)."""
    half = math.ceil(0.5 * n)
    record = {}
    for s in STRUCTURES:
        c = counts[s]
        if c is None:
            record[s] = {"asked": False}
            continue
        record[s] = {
            "asked": True,
            "truth_pixels": int(truth[s].sum()),
            "ious": iou_by_threshold(c, n, truth[s]).tolist(),
            "max_count": int(c.max()),
            "marked_at_half": bool((c >= half).any()),
            "drawings": len(drawings[s]),
            "blank": sum(1 for d in drawings[s] if not d.polygons),
        }
    return record
