"""The benchmark survey's galaxies rendered in memory, for the measurement benchmarks (no Django, no files).

    for index, p, grid in benchmark_galaxies(150):           # GalaxyParams and the 256 px GZ3D grid
        spiral_truth, bar_truth = truth_masks(p, grid)
        spiral, bar = crowd_drawings(p, grid, index, spiral=True)   # the default crowd's classifications
        fraction = consensus(spiral, grid)

Everything is drawn from the same random streams as ``make_synthetic`` (docs/synthetic.md), so the
galaxies are the benchmark survey's own.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from astropy.wcs import WCS  # noqa: E402

from evalcore.formats import gz3d  # noqa: E402
from evalcore.synthetic import renderer, volunteers  # noqa: E402
from evalcore.synthetic.population import draw_galaxy  # noqa: E402
from evalcore.synthetic.survey import BENCHMARK, SurveySettings  # noqa: E402

SETTINGS = SurveySettings(n=BENCHMARK["n"], seed=BENCHMARK["seed"], size=BENCHMARK["size"], out=Path("."))


def benchmark_galaxies(n_galaxies: int):
    """(index, GalaxyParams, GZ3D grid) of the first ``n_galaxies`` of the benchmark survey."""
    s = SETTINGS
    shape = (s.size, s.size)
    for i in range(n_galaxies):
        p = draw_galaxy(np.random.default_rng([s.seed, i, 0]), seed=s.seed, index=i, field_arcsec=s.field_arcsec)
        grid = renderer.Grid.from_wcs(WCS(gz3d.make_wcs_header(p.ra, p.dec, shape, s.gz3d_pixel_scale)),
                                      shape, p.ra, p.dec)
        yield i, p, grid


def truth_masks(p, grid) -> tuple[np.ndarray, np.ndarray]:
    """(spiral, bar) truth masks on the grid, as float fraction maps."""
    spiral, bar = renderer.truth_masks(renderer.components(p, grid))
    return spiral.astype(float), bar.astype(float)


def crowd_drawings(p, grid, index: int, *, spiral: bool = False, bar: bool = False):
    """The default crowd's (spiral, bar) classifications, with the named tasks asked whatever the earlier
    votes said."""
    s = SETTINGS
    tasks = volunteers.ask_tasks(p, np.random.default_rng([s.seed, index, 3]))
    tasks.spiral, tasks.bar = tasks.spiral or spiral, tasks.bar or bar
    return volunteers.draw_crowd(p, grid, tasks, np.random.default_rng([s.seed, index, 2, 0]),
                                 crowd=volunteers.get_crowd("default"))


def consensus(classifications, grid) -> np.ndarray:
    """Fraction of the classifications whose drawing covers each pixel (one drawing: a 0/1 mask)."""
    return gz3d.rasterise_task(classifications, grid.shape).volunteer_counts / len(classifications)
