"""Speed of each survey style: galaxies per second, one process, the classic style as the baseline.

    .venv/bin/python bench/synthetic_styles.py [--n 30] [--size 256] [--runs 3] [--styles classic,galsim-grz,...]

Per run and style, the same galaxy indices are made (both files, in a temporary folder) by a plain loop
``make_galaxy(settings, i)`` in this process; the styles alternate within a run so the machine's load
falls on all of them alike. Prints per style the median wall-clock rate, the CPU time per galaxy, the rate
on idle cores (1 / CPU per galaxy, per core) and the ratio to the classic style, measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from evalcore.synthetic import styles, survey
    from evalcore.synthetic.population import _scale_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--styles", default=",".join(styles.STYLES))
    args = parser.parse_args()
    names = args.styles.split(",")
    _scale_table()
    wall: dict[str, list] = {n: [] for n in names}
    cpu: dict[str, list] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-styles-") as tmp:
        for name in names:  # warm-up: imports (GalSim), FFT plans
            s = survey.SurveySettings(n=1, seed=0, size=args.size, out=Path(tmp, "warm", name), style=name)
            (s.out / "gz3d").mkdir(parents=True)
            (s.out / "cutouts").mkdir()
            survey.make_galaxy(s, 0)
        for run in range(args.runs):
            for name in names:
                s = survey.SurveySettings(n=args.n, seed=100 + run, size=args.size, out=Path(tmp, f"{name}{run}"),
                                          style=name)
                (s.out / "gz3d").mkdir(parents=True)
                (s.out / "cutouts").mkdir()
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(args.n):
                    survey.make_galaxy(s, i)
                wall[name].append(args.n / (time.perf_counter() - t0))
                cpu[name].append((time.process_time() - c0) / args.n)
    load = os.getloadavg()[0]
    print(f"{args.n} galaxies x {args.runs} runs per style at {args.size} px, one process; load average {load:.1f}")
    base = statistics.median(cpu[names[0]])
    ratio = "CPU vs " + names[0]
    print(f"{'style':<12} {'wall galaxies/s':>16} {'CPU ms/galaxy':>14} {'idle-core rate':>15} {ratio:>14}")
    for name in names:
        c = statistics.median(cpu[name])
        rate = statistics.median(wall[name])
        print(f"{name:<12} {rate:>16.2f} {1000 * c:>14.0f} {1 / c:>13.1f}/s {c / base:>13.1f}x")


if __name__ == "__main__":
    main()
