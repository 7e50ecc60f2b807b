"""Speed of the synthetic survey writer: worker processes against a plain single-process loop, same run.

    .venv/bin/python bench/synthetic.py [--n 60] [--size 256] [--runs 3] [--workers 2]

Per run, the same galaxies (both FITS files each, in a temporary folder) are made twice: by a plain loop
``for i in range(n): make_galaxy(settings, i)`` in this process (the baseline), and by ``make_survey``
with ``--workers`` processes. Prints the median rates (galaxies / s) and the ratio survey / loop, then
the peak memory of this process after surveys of n and 4 n galaxies (it must stay flat: galaxies are
made and written one at a time and only a small record per galaxy comes back). Target (issue 3): at
least 20 galaxies / s at 256 px on a 2-core machine, both files written.

The machine is shared, so wall-clock rates swing with its load; CPU time per galaxy does much less, and
``workers / CPU per galaxy`` is the rate the same work gives on idle cores. The GZ3D writer itself is
also timed against the plain astropy way of building the same file (``BinTableHDU.from_columns`` & co,
tests/unit/synthetic_fits_reference.py) on the galaxies just written, in the same run.
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


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def writer_cpu(folder: Path, survey, limit: int = 20) -> tuple[float, float, bool]:
    """CPU seconds per file of the astropy way and of ``gz3d.gz3d_bytes`` for (up to ``limit``) GZ3D
    files in ``folder`` (read back, then laid out again both ways), and whether the bytes are identical."""
    from synthetic_fits_reference import astropy_gz3d_bytes

    from evalcore.formats import gz3d, truthfile

    theirs = ours = 0.0
    identical = True
    paths = sorted((folder / "gz3d").glob("*.fits.gz"))[:limit]
    for path in paths:
        f = gz3d.read_gz3d(path)
        # HDU 3 / 4 rasterised beforehand: the rasterisation is the same code both ways
        kw = dict(image=f.image, header=f.header, metadata=f.metadata, spiral=f.spiral, bar=f.bar,
                  counts=(gz3d.polygon_counts(f.spiral, f.shape), gz3d.polygon_counts(f.bar, f.shape)))
        c0 = time.process_time()
        reference = astropy_gz3d_bytes(**kw, extra_hdus=truthfile.truth_hdus(f.truth.spiral, f.truth.bar,
                                                                             f.truth.params))
        c1 = time.process_time()
        laid = gz3d.gz3d_bytes(**kw, extra_hdus=[survey.truth_hdu_bytes(f.truth.spiral, f.truth.bar, f.truth.params)])
        c2 = time.process_time()
        theirs, ours, identical = theirs + c1 - c0, ours + c2 - c1, identical and reference == laid
    return theirs / len(paths), ours / len(paths), identical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from evalcore.synthetic import survey
    from evalcore.synthetic.population import _scale_table

    sys.path.insert(0, str(ROOT / "tests" / "unit"))

    _scale_table()  # cosmology import and table, outside the timings
    loop_rates, survey_rates, loop_cpu = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        warm = survey.SurveySettings(n=2, seed=1, size=args.size, out=Path(tmp, "warm"))
        survey.make_survey(warm, workers=1)
        for run in range(args.runs):
            settings = survey.SurveySettings(n=args.n, seed=run, size=args.size, out=Path(tmp, f"loop{run}"))
            for sub in ("gz3d", "cutouts"):
                (settings.out / sub).mkdir(parents=True)
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(args.n):
                survey.make_galaxy(settings, i)
            loop_rates.append(args.n / (time.perf_counter() - t0))
            loop_cpu.append((time.process_time() - c0) / args.n)
            settings = survey.SurveySettings(n=args.n, seed=run, size=args.size, out=Path(tmp, f"survey{run}"))
            t0 = time.perf_counter()
            survey.make_survey(settings, workers=args.workers)
            survey_rates.append(args.n / (time.perf_counter() - t0))
            print(f"run {run + 1}: loop {loop_rates[-1]:.1f} galaxies/s, "
                  f"survey ({args.workers} workers) {survey_rates[-1]:.1f} galaxies/s")
        loop, par = statistics.median(loop_rates), statistics.median(survey_rates)
        print(f"median over {args.runs} runs, {args.n} galaxies at {args.size} px, both files written:")
        print(f"  plain loop, 1 process:      {loop:.1f} galaxies/s")
        print(f"  make_survey, {args.workers} workers:     {par:.1f} galaxies/s")
        print(f"  ratio survey / loop:        {par / loop:.2f}")
        lc = statistics.median(loop_cpu)
        # The survey's workers are forkserver children, not ours, so their CPU is not counted here; the work
        # per galaxy is the loop's.
        print(f"  CPU per galaxy (plain loop): {1000 * lc:.0f} ms -> on {args.workers} idle cores: "
              f"{args.workers / lc:.1f} galaxies/s")
        print(f"  target: >= 20 galaxies/s -> {'met' if par >= 20 else 'NOT met'} on this machine now (wall clock), "
              f"{'met' if args.workers / lc >= 20 else 'NOT met'} at the CPU time measured")

        memory = []
        for n in (args.n, 4 * args.n):
            settings = survey.SurveySettings(n=n, seed=99, size=args.size, out=Path(tmp, f"mem{n}"))
            survey.make_survey(settings, workers=args.workers)
            memory.append((n, rss_mb()))
        for n, mb in memory:
            print(f"  peak memory after a survey of {n} galaxies: this process {mb:.0f} MB")

        # after the memory figures: reading files back here would set the peak
        theirs, ours, identical = writer_cpu(Path(tmp, "loop0"), survey)
        print(f"  GZ3D writer, CPU per file (uncompressed, truth HDUs, HDU 3/4 given): astropy HDUs "
              f"{1000 * theirs:.1f} ms, hand-laid bytes {1000 * ours:.1f} ms, ratio {theirs / ours:.1f}x, "
              f"identical bytes: {identical}")


if __name__ == "__main__":
    main()
