"""Spiral measurement speed: the shipped ``measure_spiral`` against the previous implementation, same masks,
same process, and whether they agree.

    python bench/spiral_measure.py                      # first 100 benchmark galaxies (60 masks), 3 runs
    python bench/spiral_measure.py --galaxies 2000 --runs 1   # the benchmark survey's whole test split

The masks are those of the benchmark survey (``make_synthetic --benchmark``: seed 20231204, 256 px) for the
galaxies of the first ``--galaxies`` that fall in the ``--split`` (default test; ``evalcore.sky.splits``),
made without Django or files from the same random streams as ``make_synthetic``:

  truth        the true spiral mask on the GZ3D subject grid (every galaxy; empty without arms)
  volunteers   the default crowd's consensus (fraction of the 15 volunteers covering each pixel), where the
               spiral task was asked
  arc finder   ``run_arcfinder`` on the survey cutout's g,r,z bands (as the generation source reads them)

each measured with the galaxy's true disk axis ratio and position angle (as the catalogue gives them).
Making the masks is not timed; the arc finder's are slow to make (~1 s per galaxy), so all masks are kept
in ``--cache`` (default /tmp/evalsite-bench-spiral-masks) and reused by the next run.

Timing: each run measures every mask with the reference (``bench/_spiral_reference.py``, the frozen copy
of the implementation before the compiled path) and with the shipped code, one after the other mask by
mask, so both see the same machine load; the time per mask is the run's total over the number of masks,
and the figure printed is the median over the runs; numba's compilation (or cache load) happens once,
before timing. The default run took 11 min on the 2-core machine with a load average of ~18 (other jobs),
most of it in the previous code; a few minutes on a quiet machine.

Agreement, per source: largest |pitch difference| (deg, overall and per arm), masks whose arm count,
chirality or measured/not-measured verdict differ, and the largest |pitch_err difference|.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _spiral_reference as reference  # noqa: E402
from _benchmark_masks import SETTINGS, benchmark_galaxies, consensus, truth_masks  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from evalcore.measure import spiral as shipped  # noqa: E402
from evalcore.sky.splits import split_for  # noqa: E402
from evalcore.synthetic import renderer, survey, volunteers  # noqa: E402

SOURCES = ("truth", "volunteers", "arc finder")
PITCH_TOLERANCE = 0.1  # deg


def arcfinder_mask(p, index: int) -> np.ndarray:
    """The arc finder's spiral mask of the galaxy's survey cutout (0/1 floats), the cutout rendered from
    the same noise stream as ``make_synthetic`` (the GZ3D subject first, then the cutout)."""
    from evalcore.arcfinder import ArcFinderParams, run_arcfinder
    from evalcore.arcfinder.errors import ArcFinderError
    from evalcore.formats import gz3d

    s = SETTINGS
    noise_rng = np.random.default_rng([s.seed, index, 1])
    shape = (s.size, s.size)
    grid = renderer.Grid.from_wcs(WCS(gz3d.make_wcs_header(p.ra, p.dec, shape, s.gz3d_pixel_scale)),
                                  shape, p.ra, p.dec)
    renderer.render(p, grid, survey._conditions(noise_rng, "gz3d"), noise_rng)
    cgrid = renderer.Grid.from_wcs(survey.cutout_wcs(p.ra, p.dec, s.size), shape, p.ra, p.dec)
    cut = renderer.render(p, cgrid, survey._conditions(noise_rng, "cutout"), noise_rng)
    try:
        return run_arcfinder(cut.bands.astype(np.float32), ArcFinderParams()).spiral_mask.astype(float)
    except (ArcFinderError, ValueError):
        return np.zeros(shape)


def make_masks(n_galaxies: int, split: str, sources, cache: Path) -> list[tuple[str, np.ndarray, float, float]]:
    """[(source, fraction map, disk b/a, disk PA)] for the split's galaxies among the first n."""
    out = []
    for i, p, grid in benchmark_galaxies(n_galaxies):
        if split_for(p.ra, p.dec) != split:
            continue
        disk = (float(p.axis_ratio), float(p.pa))
        if "truth" in sources:
            out.append(("truth", truth_masks(p, grid)[0], *disk))
        if "volunteers" in sources:
            tasks = volunteers.ask_tasks(p, np.random.default_rng([SETTINGS.seed, i, 3]))
            if tasks.spiral:
                drawn, _ = volunteers.draw_crowd(p, grid, tasks, np.random.default_rng([SETTINGS.seed, i, 2, 0]),
                                                 crowd=volunteers.get_crowd("default"))
                out.append(("volunteers", consensus(drawn, grid), *disk))
        if "arc finder" in sources:
            path = cache / f"arcfinder-{SETTINGS.seed}-{SETTINGS.size}-{i}.npy"
            if path.exists():
                mask = np.load(path).astype(float)
            else:
                mask = arcfinder_mask(p, i)
                cache.mkdir(parents=True, exist_ok=True)
                np.save(path, mask.astype(np.uint8))
            out.append(("arc finder", mask, *disk))
    return out


def measure(module, mask, q, pa):
    return module.measure_spiral(mask, disk_axis_ratio=q, disk_position_angle=pa)


def _diff(a, b) -> float:
    """|a - b|; 0 when both are NaN (both undefined alike), inf when only one is."""
    a, b = float("nan") if a is None else a, float("nan") if b is None else b
    if np.isnan(a) or np.isnan(b):
        return 0.0 if np.isnan(a) and np.isnan(b) else float("inf")
    return abs(a - b)


def compare(old, new) -> dict:
    """Differences between the reference's and the shipped result of one mask."""
    same_verdict = (old.measured, old.n_arms, old.chirality) == (new.measured, new.n_arms, new.chirality)
    d = {"verdict": not same_verdict, "pitch": 0.0, "arm_pitch": 0.0, "pitch_err": 0.0}
    if same_verdict and old.measured:
        d["pitch"] = _diff(old.pitch, new.pitch)
        d["arm_pitch"] = max(_diff(a.pitch, b.pitch) for a, b in zip(old.arms, new.arms))
        d["pitch_err"] = _diff(old.pitch_err, new.pitch_err)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=100, help="first N galaxies of the benchmark survey")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated: " + ", ".join(SOURCES))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/evalsite-bench-spiral-masks"))
    args = ap.parse_args()
    sources = [s.strip() for s in args.sources.split(",")]
    unknown = set(sources) - set(SOURCES)
    if unknown:
        ap.error(f"unknown sources {sorted(unknown)}")

    t0 = time.perf_counter()
    masks = make_masks(args.galaxies, args.split, sources, args.cache)
    n_marked = sum(bool(m.any()) for _, m, _, _ in masks)
    print(f"{len(masks)} spiral masks ({n_marked} not empty) of the {args.split} galaxies among the first "
          f"{args.galaxies} of the benchmark survey, made in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    measure(shipped, *masks[0][1:]) if masks else None
    print(f"first call of the shipped code (numba compilation or cache load): {time.perf_counter() - t0:.2f} s")

    per_run = {"reference": [], "shipped": []}
    per_source: dict = {s: {"n": 0, "verdict": 0, "pitch": 0.0, "arm_pitch": 0.0, "pitch_err": 0.0}
                        for s in sources}
    for run in range(args.runs):
        spent = {"reference": 0.0, "shipped": 0.0}
        for source, mask, q, pa in masks:
            t = time.perf_counter()
            old = measure(reference, mask, q, pa)
            spent["reference"] += time.perf_counter() - t
            t = time.perf_counter()
            new = measure(shipped, mask, q, pa)
            spent["shipped"] += time.perf_counter() - t
            d, agg = compare(old, new), per_source[source]
            agg["n"] += run == 0
            agg["verdict"] += d["verdict"] and run == 0
            for key in ("pitch", "arm_pitch", "pitch_err"):
                agg[key] = max(agg[key], d[key])
        for name in spent:
            per_run[name].append(spent[name] / max(len(masks), 1))
        print(f"run {run + 1}: reference {per_run['reference'][-1] * 1e3:.1f} ms/mask, "
              f"shipped {per_run['shipped'][-1] * 1e3:.2f} ms/mask", flush=True)

    old_t, new_t = statistics.median(per_run["reference"]), statistics.median(per_run["shipped"])
    print(f"\ntime per mask, median of {args.runs} runs over {len(masks)} masks (one core):")
    print(f"  reference (previous code) {old_t * 1e3:8.1f} ms")
    print(f"  shipped                   {new_t * 1e3:8.2f} ms")
    print(f"  ratio                     {old_t / new_t:8.1f} x   (target >= 10)")
    print(f"\nagreement, reference vs shipped (pitch tolerance {PITCH_TOLERANCE} deg):")
    print(f"{'source':12s} {'masks':>6s} {'verdict diffs':>14s} {'max |d pitch|':>14s} {'max |d arm pitch|':>18s} "
          f"{'max |d pitch_err|':>18s}")
    ok = True
    for source, agg in per_source.items():
        ok &= agg["verdict"] == 0 and agg["pitch"] <= PITCH_TOLERANCE and agg["arm_pitch"] <= PITCH_TOLERANCE
        print(f"{source:12s} {agg['n']:6d} {agg['verdict']:14d} {agg['pitch']:14.2e} {agg['arm_pitch']:18.2e} "
              f"{agg['pitch_err']:18.2e}")
    print("(verdict diffs: masks whose measured/not measured, arm count or chirality differ)")
    print("AGREE" if ok else "DISAGREE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
