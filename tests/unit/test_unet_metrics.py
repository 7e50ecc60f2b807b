"""Quality metrics of fraction maps: IoU, calibration, paired bootstrap, the full report."""
from __future__ import annotations

import numpy as np
import pytest

from segmentation.unet.metrics import (
    EvalItem,
    iou,
    paired_bootstrap,
    quality_report,
    reliability_curve,
)


def test_iou_of_known_masks():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True  # 8 px
    b[1:3] = True  # 8 px, 4 shared
    assert iou(a, b) == pytest.approx(4 / 12)
    assert np.isnan(iou(np.zeros((2, 2)), np.zeros((2, 2))))


def test_reliability_curve_of_calibrated_and_overconfident_predictions():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    calibrated = reliability_curve([p], [(rng.uniform(0, 1, p.size) < p).astype(float)], bins=5)
    assert calibrated["ece"] < 0.02
    over = reliability_curve([p], [np.full(p.size, 0.5)], bins=5)
    assert over["ece"] > 0.2
    assert sum(over["count"]) == p.size


def test_paired_bootstrap_separates_a_real_difference_from_none():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.7, 60)
    better = paired_bootstrap(base + 0.05 + rng.normal(0, 0.01, 60), base)
    assert better["excludes_zero"] and better["low"] > 0 and better["difference"] == pytest.approx(0.05, abs=0.01)
    same = paired_bootstrap(base + rng.normal(0, 0.05, 60), base + rng.normal(0, 0.05, 60))
    assert same["low"] < 0 < same["high"]
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1, 2], [1])


def _item(rng, k, model_noise, crowd_width):
    truth = np.zeros((32, 32), bool)
    truth[10:22, 8:24] = True
    bar_truth = np.zeros((32, 32), bool)
    if k % 2:
        bar_truth[14:18, 10:22] = True
    crowd = np.zeros((32, 32))
    crowd[10 - crowd_width:22 + crowd_width, 8 - crowd_width:24 + crowd_width] = 0.6  # drawn too wide
    pred_sp = np.clip(truth * 0.8 + rng.normal(0, model_noise, truth.shape), 0, 1)
    pred_bar = np.clip(bar_truth * 0.7 + rng.normal(0, 0.02, truth.shape), 0, 1)
    return EvalItem(f"g{k}", {"spiral": pred_sp, "bar": pred_bar},
                    {"spiral": crowd, "bar": bar_truth * 0.6 if k % 3 else None},
                    {"spiral": truth, "bar": bar_truth})


def test_quality_report_puts_model_and_crowd_against_the_truth():
    rng = np.random.default_rng(2)
    val = [_item(rng, k, 0.05, 3) for k in range(20)]
    test = [_item(rng, k, 0.05, 3) for k in range(40)]
    report = quality_report(val, test, n_boot=300)
    spiral = report["structures"]["spiral"]
    vs_truth = spiral["iou_vs_truth"]
    assert vs_truth["mean_a"] > 0.9 and vs_truth["mean_b"] < 0.6  # the crowd drew too wide
    assert vs_truth["excludes_zero"] and vs_truth["low"] > 0
    assert spiral["n_test_asked"] == 40 and set(spiral["iou_vs_volunteers"]) == {"0.2", "0.35", "0.5"}
    assert report["structures"]["bar"]["n_test_asked"] == len([k for k in range(40) if k % 3])
    bars = report["bar_detection"]
    assert bars["recall"] == 1.0 and bars["precision"] == 1.0 and bars["tp"] == 20
