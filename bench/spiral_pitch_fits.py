"""How three ways of fitting an arm's direction read the pitch of synthetic masks (docs/measurements.md).

For the first N galaxies of the benchmark survey (seed 20231204, 256 px GZ3D grid) whose mean arm contrast
is at least 1.6: the truth spiral mask, the default crowd's consensus (15 volunteers) and the first three
volunteers' own drawings, each measured with the true disk orientation. Prints the median error and median
absolute error of |pitch| against the true pitch for

  sides       the shipped fit (measure-1.1): theta on ln r along each of the arm's two long sides
  slices      theta on ln r over all the arm's pixels (measure-1.0)
  orthogonal  the principal axis of all the arm's pixels

    python bench/spiral_pitch_fits.py [N]      # N = 150 (the default): ~20 s
"""
from __future__ import annotations

import sys

import numpy as np
from _benchmark_masks import benchmark_galaxies, consensus, crowd_drawings, truth_masks

from evalcore.measure import spiral

SHIPPED_FIT = spiral._sides_fit


def _centre(theta, ln_r, w):
    return np.array([np.average(theta, weights=w), np.average(ln_r, weights=w)])


def _orthogonal(theta, ln_r, w, edge, start=None, n_iter=3):
    cov = np.cov(np.stack([theta, ln_r]), aweights=w, bias=True)
    direction = np.linalg.eigh(cov)[1][:, 1]
    pitch = np.degrees(np.arctan2(-direction[1], direction[0]))
    return float((pitch + 90.0) % 180.0 - 90.0), _centre(theta, ln_r, w)


# Each replaces the arm's main fit; its (pitch, centre point) also starts the bootstrap's side fits, which
# only move the uncertainties (not read here).
FITS = {
    "sides": SHIPPED_FIT,
    "slices": lambda theta, ln_r, w, edge, start=None, n_iter=3: (spiral._pitch_deg(theta, ln_r, w),
                                                                   _centre(theta, ln_r, w)),
    "orthogonal": _orthogonal,
}


def masks(n_galaxies: int):
    """(kind, fraction map, galaxy params) for every mask of the first n galaxies with strong arms."""
    for i, p, grid in benchmark_galaxies(n_galaxies):
        if not p.arms.amplitudes or np.mean(p.arms.amplitudes) < 1.6:
            continue
        yield "truth masks", truth_masks(p, grid)[0], p
        drawn, _ = crowd_drawings(p, grid, i, spiral=True)  # every strong spiral is drawn on
        fraction = consensus(drawn, grid)
        if fraction.max() > 0:
            yield "crowd consensus", fraction, p
        for c in drawn[:3]:
            if c.polygons:
                yield "single volunteers", consensus([c], grid), p


def main(n_galaxies: int) -> None:
    errors: dict = {}
    for kind, fraction, p in masks(n_galaxies):
        for name, fit in FITS.items():
            spiral._sides_fit = fit
            try:
                res = spiral.measure_spiral(fraction, disk_axis_ratio=p.axis_ratio, disk_position_angle=p.pa,
                                            n_boot=5)
            finally:
                spiral._sides_fit = SHIPPED_FIT
            if res.measured:
                errors.setdefault((kind, name), []).append(res.pitch_abs - p.arms.pitch)
    print(f"median pitch error, deg (median absolute error), first {n_galaxies} benchmark galaxies, "
          "mean arm contrast >= 1.6")
    print(f"{'mask':18s} {'n':>4s} " + " ".join(f"{name:>16s}" for name in FITS))
    for kind in ("truth masks", "crowd consensus", "single volunteers"):
        cells = []
        for name in FITS:
            e = np.asarray(errors.get((kind, name), []))
            cells.append(f"{np.median(e):+6.2f} ({np.median(np.abs(e)):4.2f})" if len(e) else "-")
        n = len(errors.get((kind, "sides"), []))
        print(f"{kind:18s} {n:4d} " + " ".join(f"{c:>16s}" for c in cells))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
