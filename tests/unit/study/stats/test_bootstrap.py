"""The crossed bootstrap resamples galaxies and raters, not rows."""
import numpy as np
import pandas as pd
import pytest

from evalcore.study.stats import crossed_counts, quality_summary, ratio_bootstrap
from tests.unit.stats_records import answer_row


def _study(levels: np.ndarray) -> pd.DataFrame:
    """One source, every rater (rows of `levels`) rating every galaxy (columns)."""
    return pd.DataFrame([answer_row(rater=f"r{r:02d}", galaxy=f"g{g:03d}", structure="spiral", source="model",
                                    position=1, rank=1, quality=float(levels[r, g]))
                         for r in range(levels.shape[0]) for g in range(levels.shape[1])])


def _width(answers) -> float:
    row = quality_summary(answers, n_boot=400, seed=1).iloc[0]
    assert row.share_mostly_well_or_better == pytest.approx(0.5)
    return row.share_ci_high - row.share_ci_low


def test_interval_widens_with_between_rater_and_between_galaxy_variance():
    n_raters, n_galaxies = 12, 40
    rng = np.random.default_rng(5)
    # same rows in all three studies (half "Perfectly", half "Mostly poorly"), arranged differently:
    by_rater = np.repeat([[3], [1]], n_raters // 2, axis=0) * np.ones((1, n_galaxies))     # lenient vs strict
    by_galaxy = np.tile(np.repeat([3, 1], n_galaxies // 2), (n_raters, 1))                  # easy vs hard
    scattered = rng.permutation(by_rater.ravel()).reshape(n_raters, n_galaxies)             # no structure
    widths = {name: _width(_study(levels)) for name, levels in
              [("rater", by_rater), ("galaxy", by_galaxy), ("none", scattered)]}
    # resampling rows would give the three the same width (same 480 rows, same 50% share); resampling raters
    # and galaxies finds the clustering: the width follows the number of clusters that carry the variance
    cluster_width = {name: 2 * 1.96 * 0.5 / np.sqrt(n) for name, n in [("rater", n_raters), ("galaxy", n_galaxies)]}
    assert widths["rater"] == pytest.approx(cluster_width["rater"], rel=0.25)
    assert widths["galaxy"] == pytest.approx(cluster_width["galaxy"], rel=0.25)
    binomial = 2 * 1.96 * np.sqrt(0.25 / (n_raters * n_galaxies))
    assert binomial < widths["none"] < 0.6 * widths["galaxy"]
    assert widths["none"] < 0.35 * widths["rater"]


def test_each_replicate_draws_whole_raters_and_whole_galaxies():
    rater_counts, galaxy_counts = crossed_counts(3, 2, 500, np.random.default_rng(0))
    assert rater_counts.shape == (500, 3) and galaxy_counts.shape == (500, 2)
    assert np.allclose(rater_counts.sum(1), 3) and np.allclose(galaxy_counts.sum(1), 2)
    assert np.allclose(rater_counts, rater_counts.round())
    # whole raters (and whole galaxies) drop out of some replicates while others enter twice or more
    assert (rater_counts == 0).any() and (rater_counts >= 2).any() and (galaxy_counts == 2).any()


def test_a_replicate_weighs_each_answer_by_its_rater_and_galaxy_counts():
    # 2 raters x 2 galaxies, one good answer (r0 on g0). A replicate's share is
    # count(r0) * count(g0) / 4, which is 1 with probability 1/4 * 1/4 = 6.25% > 2.5%, so the upper end of
    # the interval is 1. Resampling the 4 rows instead reaches 4/4 with probability 1/256 and would stop at 3/4.
    answers = _study(np.array([[3, 1], [1, 1]]))
    row = quality_summary(answers, n_boot=2000, seed=2).iloc[0]
    assert row.share_mostly_well_or_better == pytest.approx(0.25)
    assert (row.share_ci_low, row.share_ci_high) == (0.0, 1.0)


def test_studies_are_resampled_separately_and_results_are_reproducible():
    rows = _study(np.tile([3, 1], (4, 5)))
    other = rows.assign(study="t", quality=3.0)
    both = pd.concat([rows, other], ignore_index=True)
    both["good"] = (both["quality"] >= 2).astype(float)
    both["one"] = 1.0
    first = ratio_bootstrap(both, ["study"], "good", "one", n_boot=100, seed=3)
    again = ratio_bootstrap(both, ["study"], "good", "one", n_boot=100, seed=3)
    pd.testing.assert_frame_equal(first, again)
    t = first.set_index("study").loc["t"]
    assert (t.estimate, t.ci_low, t.ci_high) == (1.0, 1.0, 1.0)  # study t never mixes with study s
    s = first.set_index("study").loc["s"]
    assert s.ci_low < 0.5 < s.ci_high
    with pytest.raises(ValueError, match="study"):
        ratio_bootstrap(both, ["structure"], "good", "one")
