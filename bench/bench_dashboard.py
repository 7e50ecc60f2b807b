"""Speed of the staff dashboard's outcome section on a 100,000-answer study: computing the statistics and
figures (what happens once per change of the data) against serving them from the cache (every other view).

Prints medians over several runs and their ratio, measured in the same process (the machine is noisy).
Django-free: the cache is the same pickle of summary_tables that ratings.services.results writes.

    .venv/bin/python bench/bench_dashboard.py [--answers 100000] [--boot 200] [--runs 3]
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stats import simulated_study  # noqa: E402

from evalcore.study import plots  # noqa: E402
from evalcore.study.stats import summary_tables  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    answers, guesses = simulated_study(args.answers)
    print(f"{len(answers)} answers, {answers['rater'].nunique()} raters, B={args.boot}")
    compute, draw, cached = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tables.pickle"
        for _ in tqdm(range(args.runs), desc="runs"):
            t = time.perf_counter()
            tables = summary_tables(answers, guesses, n_boot=args.boot)
            compute.append(time.perf_counter() - t)
            t = time.perf_counter()
            plots.all_plots(tables)
            draw.append(time.perf_counter() - t)
            path.write_bytes(pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL))
            t = time.perf_counter()
            with open(path, "rb") as fh:
                loaded = pickle.load(fh)
            for frame in loaded.values():  # what the page does with them: HTML tables
                frame.to_html(index=False)
            cached.append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in (("compute", compute), ("draw", draw), ("cached", cached))}
    print(f"summary_tables: median {med['compute']:.2f} s; figures: {med['draw']:.2f} s; "
          f"cached view (load + HTML tables): {med['cached'] * 1000:.0f} ms")
    print(f"ratio first view / cached view: {(med['compute'] + med['draw']) / med['cached']:.0f}x")


if __name__ == "__main__":
    main()
