"""Speed of the rating statistics on a 100,000-answer study.

Prints the median wall time of summary_tables over several runs and, as the machine-independent figure,
its ratio to a baseline run in the same process: the straightforward way to get the same crossed-bootstrap
interval of one table (quality_summary's share), i.e. per replicate build the resampled table by joining
the drawn galaxies and raters and group it with pandas.

    .venv/bin/python bench/bench_stats.py [--answers 100000] [--boot 200] [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalcore.study.stats import quality_summary, summary_tables  # noqa: E402


def simulated_study(n_answers: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three sources, 50 raters, each galaxy rated by 8 raters; 10% repeats, 3% attention checks."""
    rng = np.random.default_rng(seed)
    n_raters, per_galaxy, sources = 50, 8, np.array(["model", "volunteers", "sparcfire"])
    n_galaxies = max(1, n_answers // (per_galaxy * len(sources)))
    galaxy = np.repeat(np.arange(n_galaxies), per_galaxy)
    rater = np.concatenate([rng.choice(n_raters, per_galaxy, replace=False) for _ in range(n_galaxies)])
    n_eval = len(galaxy)
    latent = np.array([1.0, 0.4, -1.0]) + rng.normal(0, 0.5, n_raters)[rater, None] \
        + rng.normal(0, 0.8, n_galaxies)[galaxy, None] + rng.normal(0, 0.7, (n_eval, 3))
    quality = np.digitize(latent, [-1.0, 0.0, 1.0]).astype(float)
    rank = np.argsort(np.argsort(-latent, axis=1), axis=1) + 1
    position = (np.arange(3)[None, :] + rater[:, None]) % 3 + 1
    kind = np.where(rng.random(n_eval) < 0.03, "attention", "real")
    evals = pd.DataFrame({
        "study": "bench", "rater": [f"r{r:02d}" for r in rater], "rater_is_staff": rater < 2,
        "galaxy": [f"g{g:05d}" for g in galaxy], "synthetic": False, "structure": "spiral",
        "item_kind": kind, "flagged_bad_image": rng.random(n_eval) < 0.01, "seconds": rng.gamma(4, 8, n_eval)})
    evals["item"] = evals["galaxy"] + ":spiral"
    evals["attention_passed"] = np.where(kind == "attention", rng.random(n_eval) < 0.95, None)
    answers = evals.loc[evals.index.repeat(3)].reset_index(drop=True)
    answers["source"] = np.tile(sources, n_eval)
    answers["panel_position"] = position.ravel()
    answers["rank"] = rank.ravel()
    answers["tie"] = False
    answers["quality"] = quality.ravel()
    repeats = answers[answers["item_kind"] == "real"].groupby("rater").head(6).assign(item_kind="repeat")
    answers = pd.concat([answers, repeats], ignore_index=True)
    guesses = answers[(answers["item_kind"] == "real")].groupby("rater").head(6)
    guesses = guesses.assign(true_source=guesses["source"], guessed_source=rng.choice(sources, len(guesses)),
                             n_choices=3)[["study", "rater", "item", "structure", "panel_position", "true_source",
                                           "guessed_source", "n_choices"]]
    return answers, guesses


def naive_crossed_share(answers: pd.DataFrame, n_boot: int, seed: int = 0) -> np.ndarray:
    """The baseline: one resampled table per replicate, then a pandas group-by."""
    rng = np.random.default_rng(seed)
    rows = answers[(answers["item_kind"] == "real") & ~answers["flagged_bad_image"].astype(bool)]
    galaxies, raters = rows["galaxy"].unique(), rows["rater"].unique()
    out = []
    for _ in range(n_boot):
        g = pd.Series(rng.choice(galaxies, len(galaxies))).value_counts().rename("wg")
        r = pd.Series(rng.choice(raters, len(raters))).value_counts().rename("wr")
        sample = rows.join(g, on="galaxy", how="inner").join(r, on="rater", how="inner")
        sample = sample.loc[sample.index.repeat(sample["wg"] * sample["wr"])]
        out.append(sample.groupby("source")["quality"].apply(lambda q: (q >= 2).mean()).to_numpy())
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    answers, guesses = simulated_study(args.answers)
    print(f"{len(answers)} answers, {answers['rater'].nunique()} raters, {answers['galaxy'].nunique()} galaxies, "
          f"B={args.boot}")
    full, share, naive = [], [], []
    for _ in tqdm(range(args.runs), desc="runs"):
        t = time.perf_counter()
        tables = summary_tables(answers, guesses, n_boot=args.boot)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        quality_summary(answers, n_boot=args.boot)
        share.append(time.perf_counter() - t)
        t = time.perf_counter()
        naive_crossed_share(answers, args.boot)
        naive.append(time.perf_counter() - t)
    med = {name: statistics.median(v) for name, v in [("full", full), ("share", share), ("naive", naive)]}
    print(f"summary_tables ({len(tables)} tables): median {med['full']:.2f} s over {args.runs} runs")
    print(f"quality_summary: median {med['share']:.2f} s; naive per-replicate baseline: {med['naive']:.2f} s")
    print(f"ratio naive / quality_summary: {med['naive'] / med['share']:.1f}x")
    print(f"ratio summary_tables (all tables) / naive (one table): {med['full'] / med['naive']:.2f}")


if __name__ == "__main__":
    main()
