"""How the study's recipe and the half-maximum profile read the bar lengths of synthetic masks
(docs/measurements.md).

For the barred galaxies among the first N of the benchmark survey (seed 20231204, 256 px GZ3D grid): the
truth bar mask and the default crowd's consensus (15 volunteers, every barred galaxy asked), measured by
``measure_bar``. Prints, against the true projected bar length on that grid, the median relative error
(bias) and the scatter (standard deviation of the relative errors, and 1.4826 x their MAD) of

  recipe   length_px: the study's 80th-percentile threshold, one region, minimum-area rectangle
  profile  profile_length_px: along the bar's axis, between the points at half the peak fraction

    python bench/bar_length_methods.py [N]      # N = 400 (the default): ~7 s
"""
from __future__ import annotations

import sys

import numpy as np
from _benchmark_masks import benchmark_galaxies, consensus, crowd_drawings, truth_masks

from evalcore.measure.bar import measure_bar
from evalcore.synthetic import volunteers

METHODS = {"recipe": "length_px", "profile": "profile_length_px"}


def masks(n_galaxies: int):
    """(kind, fraction map, true projected bar length px) for the barred galaxies among the first n."""
    for i, p, grid in benchmark_galaxies(n_galaxies):
        if p.bar is None:
            continue
        true_length = 2 * volunteers.bar_box(p, grid)["half_length"]
        yield "truth masks", truth_masks(p, grid)[1], true_length
        _, drawn = crowd_drawings(p, grid, i, bar=True)  # every barred galaxy is asked
        fraction = consensus(drawn, grid)
        if fraction.max() > 0:
            yield "crowd consensus", fraction, true_length


def main(n_galaxies: int) -> None:
    rel: dict = {}
    for kind, fraction, true_length in masks(n_galaxies):
        m = measure_bar(fraction).to_dict()
        for method, attribute in METHODS.items():
            rel.setdefault((kind, method), [])
            if m.get(attribute) is not None:
                rel[(kind, method)].append(m[attribute] / true_length - 1)
    print(f"bar length / true projected length - 1, barred galaxies among the first {n_galaxies}")
    print(f"{'mask':16s} {'method':8s} {'n':>4s} {'bias':>7s} {'scatter':>8s} {'robust':>7s}")
    for (kind, method), v in rel.items():
        v = np.asarray(v)
        robust = 1.4826 * np.median(np.abs(v - np.median(v)))
        print(f"{kind:16s} {method:8s} {len(v):4d} {100 * np.median(v):+6.1f}% {100 * np.std(v):7.1f}% "
              f"{100 * robust:6.1f}%")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
