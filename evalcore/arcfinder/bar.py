"""An optional bar candidate from the orientation field (SpArcFiRe step 6, simplified).

A bar is a straight ridge through the centre: along the line at angle phi the ridge directions line up
with phi. For each phi (3 deg steps) the alignment s cos^2(theta - phi) is sampled along the line; the
half-length is where the (two-sided mean) profile falls below half of its inner level, and the score is the
mean alignment within that half-length over the median of the same quantity over all directions. A
candidate must also be straight (aligned strength / all strength along it >= 0.8) and strong (mean aligned
strength >= 0.1 of the field's maximum).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class BarCandidate:
    angle_deg: float          # math angle of the bar on the grid (counter-clockwise from +col, as displayed)
    half_length: float        # px of the grid
    score: float              # best direction's alignment over the median direction's

    def as_dict(self) -> dict:
        return {"angle_deg": self.angle_deg, "half_length_px": self.half_length, "score": self.score}


def find_bar(strength: np.ndarray, theta: np.ndarray, centre: tuple[float, float], cutoff: float,
             max_half_length: float | None = None, min_half_length: float = 6.0, min_straightness: float = 0.8,
             min_level: float = 0.1) -> BarCandidate | None:
    """The best bar candidate, or None when no direction stands out by ``cutoff``."""
    h, w = strength.shape
    reach = max_half_length or min(h, w) / 4.0
    t = np.arange(2.0, reach, 1.0)
    c2, s2 = strength * np.cos(2 * theta), strength * np.sin(2 * theta)
    results = []
    straightness = []
    for phi in np.radians(np.arange(0.0, 180.0, 3.0)):
        profile = np.zeros_like(t)
        total = np.zeros_like(t)
        for sign in (1.0, -1.0):
            rows = centre[0] - sign * t * np.sin(phi)
            cols = centre[1] + sign * t * np.cos(phi)
            a = ndimage.map_coordinates(c2, [rows, cols], order=1, mode="constant")
            b = ndimage.map_coordinates(s2, [rows, cols], order=1, mode="constant")
            s = ndimage.map_coordinates(strength, [rows, cols], order=1, mode="constant")
            # s cos^2(theta - phi) = (s + s cos(2 theta - 2 phi)) / 2
            profile += 0.5 * (s + a * np.cos(2 * phi) + b * np.sin(2 * phi)) / 2
            total += s / 2
        inner = profile[: max(3, len(profile) // 8)].mean()
        below = np.nonzero(profile < 0.5 * inner)[0]
        half = float(t[below[0]]) if below.size else float(t[-1])
        mean = float(profile[t <= half].mean()) if inner > 0 else 0.0
        results.append((phi, half, mean))
        within = t <= half
        straightness.append(float(profile[within].sum() / max(total[within].sum(), 1e-12)))
    means = np.array([m for _, _, m in results])
    median = float(np.median(means))
    best = int(np.argmax(means))
    phi, half, mean = results[best]
    score = mean / median if median > 0 else 0.0
    # a bar is a strong, straight ridge: well aligned all along, and bright where it starts
    if score < cutoff or half < min_half_length or straightness[best] < min_straightness or mean < min_level:
        return None
    return BarCandidate(angle_deg=float(np.degrees(phi)), half_length=half, score=float(score))


def bar_like(points_xy: np.ndarray, bar: BarCandidate, tolerance: float = 4.0, share: float = 0.7) -> bool:
    """Whether a cluster (pixels as (x, y) px from the centre, math axes) lies along the bar segment."""
    phi = np.radians(bar.angle_deg)
    along = points_xy[:, 0] * np.cos(phi) + points_xy[:, 1] * np.sin(phi)
    across = -points_xy[:, 0] * np.sin(phi) + points_xy[:, 1] * np.cos(phi)
    inside = (np.abs(across) <= tolerance) & (np.abs(along) <= bar.half_length + tolerance)
    return bool(inside.mean() >= share)
