"""Speed of the synthetic survey writer: worker processes against a plain single-process loop, same run.

    .venv/bin/python bench/synthetic.py [--n 60] [--size 256] [--runs 3] [--workers 2]

Per run, the same galaxies (both FITS files each, in a temporary folder) are made twice: by a plain loop
``for i in range(n): make_galaxy(settings, i)`` in this process (the baseline), and by ``make_survey``
with ``--workers`` processes. Prints the median rates (galaxies / s) and the ratio survey / loop, then
the peak memory of this process after surveys of n and 4 n galaxies (it must stay flat: galaxies are
made and written one at a time and only a small record per galaxy comes back). Target (issue 3): at
least 20 galaxies / s at 256 px on a 2-core machine, both files written.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: less sensitive to a busy machine than wall time."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from segmentation.synthetic import survey
    from segmentation.synthetic.population import _scale_table

    _scale_table()  # cosmology import and table, outside the timings
    loop_rates, survey_rates, loop_cpu, survey_cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        warm = survey.SurveySettings(n=2, seed=1, size=args.size, out=Path(tmp, "warm"))
        survey.make_survey(warm, workers=1)
        for run in range(args.runs):
            settings = survey.SurveySettings(n=args.n, seed=run, size=args.size, out=Path(tmp, f"loop{run}"))
            for sub in ("gz3d", "cutouts"):
                (settings.out / sub).mkdir(parents=True)
            t0, c0 = time.perf_counter(), cpu_seconds()
            for i in range(args.n):
                survey.make_galaxy(settings, i)
            loop_rates.append(args.n / (time.perf_counter() - t0))
            loop_cpu.append((cpu_seconds() - c0) / args.n)
            settings = survey.SurveySettings(n=args.n, seed=run, size=args.size, out=Path(tmp, f"survey{run}"))
            t0, c0 = time.perf_counter(), cpu_seconds()
            survey.make_survey(settings, workers=args.workers)
            survey_rates.append(args.n / (time.perf_counter() - t0))
            survey_cpu.append((cpu_seconds() - c0) / args.n)
            print(f"run {run + 1}: loop {loop_rates[-1]:.1f} galaxies/s, "
                  f"survey ({args.workers} workers) {survey_rates[-1]:.1f} galaxies/s")
        loop, par = statistics.median(loop_rates), statistics.median(survey_rates)
        print(f"median over {args.runs} runs, {args.n} galaxies at {args.size} px, both files written:")
        print(f"  plain loop, 1 process:      {loop:.1f} galaxies/s")
        print(f"  make_survey, {args.workers} workers:     {par:.1f} galaxies/s")
        print(f"  ratio survey / loop:        {par / loop:.2f}")
        print(f"  CPU per galaxy: loop {1000 * statistics.median(loop_cpu):.0f} ms, "
              f"survey {1000 * statistics.median(survey_cpu):.0f} ms (idle-machine estimate with "
              f"{args.workers} workers: {args.workers / statistics.median(survey_cpu):.1f} galaxies/s)")
        print(f"  target: >= 20 galaxies/s -> {'met' if par >= 20 else 'NOT met'} on this machine now")

        memory = []
        for n in (args.n, 4 * args.n):
            settings = survey.SurveySettings(n=n, seed=99, size=args.size, out=Path(tmp, f"mem{n}"))
            survey.make_survey(settings, workers=args.workers)
            memory.append((n, rss_mb()))
        for n, mb in memory:
            print(f"  peak memory of this process after a survey of {n} galaxies: {mb:.0f} MB")


if __name__ == "__main__":
    main()
