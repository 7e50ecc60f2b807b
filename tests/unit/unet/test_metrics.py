"""Quality metrics of fraction maps: IoU, calibration, paired bootstrap, the full report."""
from __future__ import annotations

import numpy as np
import pytest

from evalcore.unet.metrics import (
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


def test_sources_vs_truth_thresholds_on_val_and_pairs_sources_on_common_galaxies():
    from evalcore.unet.metrics import sources_vs_truth

    rng = np.random.default_rng(3)

    def galaxy(i):
        truth = np.zeros((20, 20))
        truth[5:5 + 2 + i % 5, 3:17] = 1.0
        soft = np.where(truth > 0, 0.7, 0.3) + rng.uniform(-0.05, 0.05, truth.shape)  # right only above ~0.4
        half = truth.copy()
        half[:, 10:] = 0  # a binary source that finds the left half of the truth
        return truth, soft, half

    val, test = {"soft": {}, "half": {}}, {"soft": {}, "half": {}, "absent": {}}
    val_truth, test_truth = {}, {}
    for i in range(12):
        t, s, h = galaxy(i)
        val_truth[f"v{i}"], val["soft"][f"v{i}"], val["half"][f"v{i}"] = t, s, h
    for i in range(30):
        t, s, h = galaxy(i + 100)
        test_truth[f"t{i}"], test["soft"][f"t{i}"] = t, s
        if i % 3:  # the binary source has no mask for every third galaxy
            test["half"][f"t{i}"] = h
    test_truth["empty"] = np.zeros((20, 20))  # a galaxy without the structure: IoU undefined, left out
    test["soft"]["empty"] = np.full((20, 20), 0.2)

    r = sources_vs_truth(val, val_truth, test, test_truth, n_boot=500)

    assert r["n_test_truth"] == 30 and r["n_val_truth"] == 12
    soft, half, absent = r["sources"]["soft"], r["sources"]["half"], r["sources"]["absent"]
    assert 0.35 <= soft["threshold"] <= 0.65 and soft["threshold_from"].startswith("best mean IoU on 12")
    assert soft["mean"] == pytest.approx(1.0) and soft["n"] == 30 and soft["n_missing"] == 0
    assert half["threshold_from"] == "binary mask" and half["n"] == 20 and half["n_missing"] == 10
    expected_half = [np.count_nonzero(galaxy(i + 100)[2]) / np.count_nonzero(galaxy(i + 100)[0])
                     for i in range(30) if i % 3]
    assert half["mean"] == pytest.approx(np.mean(expected_half))
    assert absent["n"] == 0 and absent["mean"] is None and absent["n_missing"] == 30
    d = {(x["a"], x["b"]): x for x in r["differences"]}
    assert d[("soft", "half")]["n"] == 20 and d[("soft", "half")]["excludes_zero"]
    assert d[("soft", "half")]["difference"] == pytest.approx(1.0 - np.mean(expected_half))
    assert d[("soft", "absent")]["n"] == 0 and d[("soft", "absent")]["difference"] is None


def test_a_fraction_exactly_at_a_threshold_reaches_it_despite_float32_rounding():
    from evalcore.formats import maskcodec
    from evalcore.unet.metrics import at_least, ious_at

    votes = np.array([[7, 6, 3, 2]])
    f20 = maskcodec.decode(maskcodec.encode(votes, 20).png, 20)  # float32, 7/20 = 0.34999999
    assert f20[0, 0] < np.float64(0.35)  # the rounding this guards against (thresholds are float64)
    assert at_least(f20, np.float64(0.35)).tolist() == [[True, False, False, False]]
    f15 = maskcodec.decode(maskcodec.encode(votes, 15).png, 15)
    assert at_least(f15, 0.2).tolist() == [[True, True, True, False]]
    assert ious_at([f20], [np.array([[1.0, 0, 0, 0]])], 0.35, 0.5).tolist() == [1.0]
    # a fraction one vote below stays below, also out of 255
    f255 = maskcodec.decode(maskcodec.encode(np.array([[89, 90]]), 255).png, 255)  # 0.349, 0.353
    assert at_least(f255, 0.35).tolist() == [[False, True]]


def test_the_bar_threshold_never_calls_every_galaxy_barred_when_a_weak_detector_does_better():
    from evalcore.unet.metrics import detection, detection_threshold

    # a weak detector on a small validation split: F1 is best when every galaxy is called barred (0.46 at a
    # barred share of 0.3); Youden's J prefers the threshold that separates a little
    barred, unbarred = [0.05, 0.05, 0.4], [0.05] * 5 + [0.45, 0.5]
    scores, labels = barred + unbarred, [True] * 3 + [False] * 7
    f1 = {t: detection(scores, labels, t) for t in (0.05, 0.1)}
    assert f1[0.05]["fp"] == 7 and f1[0.05]["recall"] == 1.0  # everything called barred
    t = detection_threshold(scores, labels)
    chosen = detection(scores, labels, t)
    assert t == 0.1 and chosen["fp"] == 2 and chosen["tp"] == 1
    # with no separation at all, nothing beats J = 0: the lowest threshold of equals is taken
    assert detection_threshold([0.3] * 4, [True, False, True, False]) == 0.05
