"""Quality of predicted fraction maps (numpy only, no Django, no torch).

Per structure: L1 against the volunteer maps, IoU at fraction thresholds against the volunteers,
calibration (reliability curve: mean predicted vs mean observed volunteer fraction per bin of prediction),
and - where the ground truth is known (synthetic galaxies) - IoU against the truth next to the crowd
consensus's IoU against the same truth. Thresholds are chosen on the validation split and reported on the
test split with paired bootstrap confidence intervals that resample galaxies. Bar detection: recall and
precision of "has a bar" per galaxy.

All maps are (H, W) float fractions in [0, 1] on one grid per galaxy; sizes in px.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evalcore.vocabulary import STRUCTURES

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))
REPORT_THRESHOLDS = (0.2, 0.35, 0.5)
# Fractions k/n come out of storage as float32, where e.g. 7/20 is 0.34999999: a pixel exactly at a threshold
# must count as reaching it. Any k/n (n <= 255) that is not equal to a two-decimal threshold lies at least
# 1/(100 n) > 3.9e-5 away from it, far beyond this tolerance.
FRACTION_TOLERANCE = 1e-6


@dataclass
class EvalItem:
    """One galaxy: the model's maps, the volunteers' maps (None = not asked) and the truth (None = unknown)."""

    key: str
    pred: dict[str, np.ndarray]
    volunteers: dict[str, np.ndarray | None] = field(default_factory=dict)
    truth: dict[str, np.ndarray | None] = field(default_factory=dict)


def at_least(fractions: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels whose fraction reaches ``threshold`` (>=, robust to float32 rounding of k/n)."""
    return np.asarray(fractions) >= threshold - FRACTION_TOLERANCE


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks; NaN when both are empty (undefined)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else float("nan")


def l1(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute fraction difference over pixels."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(target, np.float64))))


def reliability_curve(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], bins: int = 10) -> dict:
    """Pooled over all pixels: per bin of predicted fraction (equal width on [0, 1]), the mean prediction,
    the mean observed (volunteer) fraction and the pixel count; ``ece`` = count-weighted mean |gap|."""
    p = np.concatenate([np.asarray(x, np.float64).ravel() for x in preds]) if preds else np.zeros(0)
    t = np.concatenate([np.asarray(x, np.float64).ravel() for x in targets]) if targets else np.zeros(0)
    if p.shape != t.shape:
        raise ValueError("predictions and targets differ in size")
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(idx, weights=p, minlength=bins) / count
        mean_obs = np.bincount(idx, weights=t, minlength=bins) / count
    gaps = np.abs(mean_pred - mean_obs)
    ece = float(np.nansum(gaps * count) / count.sum()) if count.sum() else float("nan")
    return {"edges": edges.tolist(), "mean_predicted": _nan_to_none(mean_pred), "mean_observed": _nan_to_none(mean_obs),
            "count": count.astype(int).tolist(), "ece": ece}


def _nan_to_none(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in a]


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of ``values`` (NaN dropped) with a percentile bootstrap interval over items."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return {"mean": float(v.mean()), "low": float(np.quantile(means, a)), "high": float(np.quantile(means, 1 - a)),
            "n": int(v.size)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Mean of a, mean of b and of a - b over the items where both are defined, with a bootstrap interval
    of the difference that resamples items (galaxies) with their pairs kept together."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if not a.size:
        return {"mean_a": None, "mean_b": None, "difference": None, "low": None, "high": None, "n": 0,
                "excludes_zero": False}
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    q = (1 - level) / 2
    lo, hi = float(np.quantile(means, q)), float(np.quantile(means, 1 - q))
    return {"mean_a": float(a.mean()), "mean_b": float(b.mean()), "difference": float(d.mean()), "low": lo,
            "high": hi, "n": int(d.size), "excludes_zero": bool(lo > 0 or hi < 0)}


def ious_at(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray], t_pred: float, t_ref: float) -> np.ndarray:
    """Per galaxy IoU of (pred >= t_pred) with (ref >= t_ref); NaN where both are empty."""
    return np.array([iou(at_least(p, t_pred), at_least(r, t_ref)) for p, r in zip(preds, refs)])


def _nanmean(v: np.ndarray) -> float:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def choose_threshold(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray], *, ref_threshold: float,
                     candidates: Sequence[float] = THRESHOLDS) -> float:
    """The threshold on ``preds`` with the highest mean IoU against ``refs >= ref_threshold``."""
    scores = [_nanmean(ious_at(preds, refs, t, ref_threshold)) for t in candidates]
    if not np.any(np.isfinite(scores)):
        return float(candidates[len(candidates) // 2])
    return float(candidates[int(np.nanargmax(scores))])


def detection(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> dict:
    """Galaxy-level detection: predicted positive when score >= threshold."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pred = s >= threshold
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
    return {"threshold": float(threshold), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "recall": tp / (tp + fn) if tp + fn else None, "precision": tp / (tp + fp) if tp + fp else None}


def youden(d: dict) -> float:
    """Youden's J of a detection: recall minus the false-positive rate. Calling every galaxy barred (or none)
    scores 0, whatever the share of barred galaxies; F1 would reward calling every galaxy barred with
    2p/(1+p) for a barred share p (0.46 at 0.3), which a small validation split's weak detector rarely beats."""
    tp, fp, fn, tn = d["tp"], d["fp"], d["fn"], d["tn"]
    recall = tp / (tp + fn) if tp + fn else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return recall - fpr


def detection_threshold(scores: Sequence[float], labels: Sequence[bool],
                        candidates: Sequence[float] = THRESHOLDS) -> float:
    """The candidate threshold with the highest Youden's J on (``scores``, ``labels``); the lowest of equals."""
    return max(candidates, key=lambda t: (youden(detection(scores, labels, t)), -t))


def bar_score(pred_bar: np.ndarray) -> float:
    """A galaxy's "has a bar" score: the 99.5th percentile of its predicted bar fraction (robust to a
    few stray pixels, still sensitive to small bars)."""
    return float(np.percentile(pred_bar, 99.5))


def _bar_label(item: EvalItem) -> bool | None:
    """Truth when known (any true bar pixel), else the volunteers (someone drew a bar where >= half agree)."""
    truth = item.truth.get("bar")
    if truth is not None:
        return bool(np.any(truth > 0))
    vol = item.volunteers.get("bar")
    return None if vol is None else bool(np.max(vol) >= 0.5)


def _bar_detection(val: Sequence[EvalItem], test: Sequence[EvalItem], n_boot: int, seed: int) -> dict:
    def scored(items):
        rows = [(bar_score(i.pred["bar"]), _bar_label(i)) for i in items]
        rows = [r for r in rows if r[1] is not None]
        return [r[0] for r in rows], [r[1] for r in rows]

    vs, vl = scored(val)
    ts, tl = scored(test)
    if not tl or not any(tl):
        return {"n": len(tl), "note": "no barred galaxies with labels in the test split"}
    best = detection_threshold(vs, vl) if vl else 0.5
    result = detection(ts, tl, best)
    s, y = np.asarray(ts), np.asarray(tl)
    rng = np.random.default_rng(seed)
    recalls, precisions = [], []
    for _ in range(n_boot):
        k = rng.integers(0, len(s), len(s))
        d = detection(s[k], y[k], best)
        if d["recall"] is not None:
            recalls.append(d["recall"])
        if d["precision"] is not None:
            precisions.append(d["precision"])
    result["recall_ci"] = [float(np.quantile(recalls, 0.025)), float(np.quantile(recalls, 0.975))] if recalls else None
    result["precision_ci"] = ([float(np.quantile(precisions, 0.025)), float(np.quantile(precisions, 0.975))]
                              if precisions else None)
    result["n"] = len(tl)
    result["label"] = "truth where known, else volunteers (max fraction >= 0.5)"
    return result


def _pairs(items: Sequence[EvalItem], structure: str, source: str):
    """(keys, preds, refs) for items whose ``source`` map of ``structure`` exists."""
    keys, preds, refs = [], [], []
    for it in items:
        ref = getattr(it, source).get(structure)
        if ref is not None:
            keys.append(it.key)
            preds.append(it.pred[structure])
            refs.append(ref)
    return keys, preds, refs


def quality_report(val: Sequence[EvalItem], test: Sequence[EvalItem], *, n_boot: int = 2000, seed: int = 0,
                   bins: int = 10) -> dict:
    """The full report, JSON-serialisable. See the module docstring and docs/unet.md for definitions."""
    report: dict = {"n_val": len(val), "n_test": len(test), "structures": {}}
    for st in STRUCTURES:
        r: dict = {}
        _, vp, vv = _pairs(val, st, "volunteers")
        _, tp, tv = _pairs(test, st, "volunteers")
        r["n_test_asked"] = len(tp)
        r["l1"] = bootstrap_ci([l1(p, v) for p, v in zip(tp, tv)], n_boot=n_boot, seed=seed)
        r["iou_vs_volunteers"] = {
            str(t): bootstrap_ci(ious_at(tp, tv, t, t), n_boot=n_boot, seed=seed) for t in REPORT_THRESHOLDS}
        t_best = choose_threshold(vp, vv, ref_threshold=0.5)
        r["iou_vs_volunteer_consensus"] = {
            "volunteer_threshold": 0.5, "model_threshold_from_val": t_best,
            **bootstrap_ci(ious_at(tp, tv, t_best, 0.5), n_boot=n_boot, seed=seed)}
        r["calibration"] = reliability_curve(tp, tv, bins)
        # against the truth, model next to the crowd, each with its own threshold chosen on val
        ttruth_items = [it for it in test if it.truth.get(st) is not None and it.volunteers.get(st) is not None
                        and np.any(it.truth[st] > 0)]
        val_truth_items = [it for it in val if it.truth.get(st) is not None and it.volunteers.get(st) is not None
                           and np.any(it.truth[st] > 0)]
        if ttruth_items:
            vt = [it.truth[st] > 0 for it in val_truth_items]
            t_model = choose_threshold([it.pred[st] for it in val_truth_items], vt, ref_threshold=0.5)
            t_crowd = choose_threshold([it.volunteers[st] for it in val_truth_items], vt, ref_threshold=0.5)
            truth = [it.truth[st] > 0 for it in ttruth_items]
            model_iou = ious_at([it.pred[st] for it in ttruth_items], truth, t_model, 0.5)
            crowd_iou = ious_at([it.volunteers[st] for it in ttruth_items], truth, t_crowd, 0.5)
            r["iou_vs_truth"] = {"model_threshold": t_model, "crowd_threshold": t_crowd,
                                 **paired_bootstrap(model_iou, crowd_iou, n_boot=n_boot, seed=seed),
                                 "a": "model", "b": "crowd consensus"}
        report["structures"][st] = r
    report["bar_detection"] = _bar_detection(val, test, n_boot, seed)
    return report


def items_from_predictions(keys: Sequence[str], preds: Sequence[np.ndarray],
                           volunteers: Sequence[dict], truths: Sequence[dict] | None = None) -> list[EvalItem]:
    """EvalItems from Predictor output ((2, H, W) arrays, channel order spiral, bar) and per-galaxy dicts."""
    truths = truths if truths is not None else [{}] * len(keys)
    return [EvalItem(k, {st: p[i] for i, st in enumerate(STRUCTURES)}, dict(v), dict(t))
            for k, p, v, t in zip(keys, preds, volunteers, truths)]


def is_binary(maps: Sequence[np.ndarray]) -> bool:
    """True when every map holds only 0 and 1 (a binary mask: any threshold in (0, 1] gives the same)."""
    return all(np.all((m == 0) | (m == 1)) for m in maps)


def sources_vs_truth(val: dict[str, dict[str, np.ndarray]], val_truth: dict[str, np.ndarray],
                     test: dict[str, dict[str, np.ndarray]], test_truth: dict[str, np.ndarray], *,
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """Mask IoU against the truth for several mask sources on the same galaxies, with paired differences.

    ``val`` / ``test``: per source label, {galaxy key: fraction map}; ``val_truth`` / ``test_truth``:
    {galaxy key: truth map}, a pixel being true where the truth is > 0. Each source's threshold is the one
    with the best mean IoU on the validation galaxies (a binary source needs none); it is then applied on
    the test galaxies. A test galaxy whose truth is empty is left out (IoU undefined, as in
    ``quality_report``); one without a map from a source counts as missing for that source only. Every
    pair of sources gets a paired bootstrap of the IoU difference over the galaxies both have.
    """
    truth_t = {k: np.asarray(v) > 0 for k, v in test_truth.items() if np.any(np.asarray(v) > 0)}
    truth_v = {k: np.asarray(v) > 0 for k, v in val_truth.items() if np.any(np.asarray(v) > 0)}
    per: dict[str, dict[str, float]] = {}
    out: dict = {"n_test_truth": len(truth_t), "n_val_truth": len(truth_v), "sources": {}, "differences": []}
    for label, maps in test.items():
        vkeys = [k for k in truth_v if k in val.get(label, {})]
        vmaps = [val[label][k] for k in vkeys]
        tkeys = [k for k in truth_t if k in maps]
        if tkeys and is_binary(vmaps) and is_binary([maps[k] for k in tkeys]):
            threshold, how = 0.5, "binary mask"
        elif vkeys:
            threshold = choose_threshold(vmaps, [truth_v[k] for k in vkeys], ref_threshold=0.5)
            how = f"best mean IoU on {len(vkeys)} validation galaxies"
        else:
            threshold, how = 0.5, "no validation maps: 0.5"
        per[label] = {k: iou(at_least(maps[k], threshold), truth_t[k]) for k in tkeys}
        out["sources"][label] = {"threshold": threshold, "threshold_from": how,
                                 "n_missing": len(truth_t) - len(tkeys),
                                 **bootstrap_ci(list(per[label].values()), n_boot=n_boot, seed=seed)}
    labels = list(per)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            common = [k for k in per[a] if k in per[b]]
            out["differences"].append({"a": a, "b": b, **paired_bootstrap(
                [per[a][k] for k in common], [per[b][k] for k in common], n_boot=n_boot, seed=seed)})
    return out
