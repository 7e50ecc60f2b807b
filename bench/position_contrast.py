"""How often a planted left-panel advantage is found: the paired position contrast against the marginal
per-position intervals, and how often the contrast's 95% interval covers the planted value.

Each simulated study (``evalcore.study.simulate.position_study``): 60 galaxies, 8 raters, 3 raters per
galaxy, three sources in a Williams-balanced panel order; the left panel is raised one level with
probability ``bonus`` (so by ``bonus`` levels on average). "Marginal" counts a study as detecting the
effect when position 1's crossed-bootstrap interval of the mean level lies wholly above those of the
other positions (``position_bias``, B=100); "contrast" when the lower end of position 1's paired effect
interval (``position_contrast``) is above 0.

    .venv/bin/python bench/position_contrast.py [--studies 200] [--bonus 0.3 0.26 0]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalcore.study.simulate import position_study  # noqa: E402
from evalcore.study.stats import validate_answers  # noqa: E402
from evalcore.study.stats.position import _position_contrast  # noqa: E402
from evalcore.study.stats.quality import _position_bias  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--bonus", type=float, nargs="+", default=[0.3, 0.26, 0.0])
    parser.add_argument("--galaxies", type=int, default=60)
    args = parser.parse_args()
    print(f"{platform.node()} {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"{args.studies} simulated studies per row, {args.galaxies} galaxies, 8 raters, 3 raters per galaxy")
    print("planted  contrast found  marginal found  contrast covers planted  mean effect  mean CI width")
    for bonus in args.bonus:
        found = marginal = covered = 0
        effects, widths = [], []
        start = time.perf_counter()
        for seed in range(args.studies):
            answers = validate_answers(position_study(left_bonus=bonus, seed=10_000 + seed,
                                                      n_galaxies=args.galaxies))
            table = _position_contrast(answers)
            row = table[(table["outcome"] == "quality_level") & (table["panel_position"] == 1)].iloc[0]
            found += row["ci_low"] > 0
            covered += row["ci_low"] <= bonus <= row["ci_high"]
            effects.append(row["effect"])
            widths.append(row["ci_high"] - row["ci_low"])
            bias = _position_bias(answers, n_boot=100, seed=seed).set_index("panel_position")
            marginal += bias.loc[1, "mean_level_ci_low"] > bias.loc[[2, 3], "mean_level_ci_high"].max()
        n = args.studies
        print(f"{bonus:+.2f}    {100 * found / n:5.1f}%          {100 * marginal / n:5.1f}%          "
              f"{100 * covered / n:5.1f}%                  {np.mean(effects):+.3f}       {np.mean(widths):.3f}"
              f"   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
