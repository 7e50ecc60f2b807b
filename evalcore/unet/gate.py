"""The quality gate: may a model version serve (be the active version) on the strength of its own evaluation?
(no Django)

A version passes when every check that applies to its test-split report passes (docs/model-quality.md,
"The quality gate"):

- spiral, where the truth is known (synthetic galaxies): IoU vs truth (the model's threshold chosen on the
  validation split, ``metrics.quality_report``) at least ``SPIRAL_IOU_FLOOR`` and above the arc finder's IoU
  vs truth on the same test galaxies. The arc finder's masks must exist for nearly all of them
  (``ARC_COVERAGE``); otherwise the gate cannot decide and the version waits ("incomplete").
- spiral, without truth (volunteer labels only): IoU vs the volunteers' consensus (>= half agree) at least
  ``SPIRAL_CONSENSUS_FLOOR``.
- bar, when the test split has barred galaxies: detection recall at least ``BAR_RECALL_FLOOR`` (a dead bar
  channel has 0) and precision above the share of barred galaxies in the test split (what "a bar
  everywhere" scores); with truth, bar IoU vs truth at least ``BAR_IOU_FLOOR``.

The result is a JSON-ready dict: status "passed" | "failed" | "incomplete", the checks with value, floor
and outcome, and one sentence per failed or undecided check (what the admin and ``generate_masks`` show).
Each check concerns one structure (its name starts with it); ``passed_for`` says whether a version passed
for some structures only (a study of spiral arms needs the spiral checks, not the bar ones).
"""
from __future__ import annotations

PASSED, FAILED, INCOMPLETE = "passed", "failed", "incomplete"
SPIRAL_IOU_FLOOR = 0.30
SPIRAL_CONSENSUS_FLOOR = 0.25
BAR_RECALL_FLOOR = 0.30
BAR_IOU_FLOOR = 0.20
BAR_PRECISION_MARGIN = 0.0  # precision must exceed the share of barred test galaxies by more than this
ARC_COVERAGE = 0.9  # share of the test galaxies with a true spiral that need an arc-finder mask
GATE_VERSION = 1


def floors() -> dict:
    return {"spiral_iou_vs_truth": SPIRAL_IOU_FLOOR, "spiral_above_arc_finder": True,
            "spiral_iou_vs_consensus": SPIRAL_CONSENSUS_FLOOR, "bar_recall": BAR_RECALL_FLOOR,
            "bar_precision": "above the share of barred test galaxies", "bar_iou_vs_truth": BAR_IOU_FLOOR,
            "arc_coverage": ARC_COVERAGE}


def _check(name: str, value, floor, passed: bool | None, reason: str) -> dict:
    return {"name": name, "value": value, "floor": floor, "passed": passed, "reason": "" if passed else reason}


def check(report: dict | None, arc_finder: dict | None = None) -> dict:
    """Gate a test-split quality report (``metrics.quality_report`` as stored by ``evaluate_version``).

    ``arc_finder``: the arc finder's spiral IoU vs truth on the same test galaxies,
    ``{"mean": float | None, "n": int, "n_missing": int}`` (None when there is no truth)."""
    checks: list[dict] = []
    if not report:
        checks.append(_check("evaluation", None, "a test-split evaluation", None,
                             "not evaluated on its test split yet (evaluate_model)"))
        return _result(checks)
    spiral = report.get("structures", {}).get("spiral", {})
    truth = spiral.get("iou_vs_truth") or {}
    if truth.get("n"):
        value = truth.get("mean_a")
        checks.append(_check("spiral IoU vs truth", value, SPIRAL_IOU_FLOOR,
                             value is not None and value >= SPIRAL_IOU_FLOOR,
                             f"spiral IoU vs truth {_f(value)} is below the floor {SPIRAL_IOU_FLOOR:.2f}"))
        arc = arc_finder or {}
        n_arc, missing = int(arc.get("n") or 0), int(arc.get("n_missing") or 0)
        if arc.get("mean") is None or n_arc < ARC_COVERAGE * (n_arc + missing):
            checks.append(_check("spiral IoU vs truth above the arc finder's", value, None, None,
                                 f"the arc finder's masks exist for {n_arc} of {n_arc + missing} test galaxies "
                                 f"with a true spiral: generate them (generate_masks --source sparcfire "
                                 f"--split test), then evaluate again"))
        else:
            checks.append(_check("spiral IoU vs truth above the arc finder's", value, arc["mean"],
                                 value is not None and value > arc["mean"],
                                 f"spiral IoU vs truth {_f(value)} is not above the arc finder's {_f(arc['mean'])} "
                                 f"on the same {n_arc} test galaxies"))
    else:
        c = spiral.get("iou_vs_volunteer_consensus") or {}
        value = c.get("mean")
        if value is None:
            checks.append(_check("spiral IoU vs consensus", None, SPIRAL_CONSENSUS_FLOOR, None,
                                 "no test galaxy with a spiral drawn by the volunteers: the spiral quality "
                                 "cannot be judged"))
        else:
            checks.append(_check("spiral IoU vs consensus", value, SPIRAL_CONSENSUS_FLOOR,
                                 value >= SPIRAL_CONSENSUS_FLOOR,
                                 f"spiral IoU vs the volunteers' consensus {_f(value)} is below the floor "
                                 f"{SPIRAL_CONSENSUS_FLOOR:.2f}"))
    bar = report.get("bar_detection") or {}
    if bar.get("recall") is not None or bar.get("precision") is not None or bar.get("tp") is not None:
        v = bar.get("recall")
        checks.append(_check("bar detection recall", v, BAR_RECALL_FLOOR, v is not None and v >= BAR_RECALL_FLOOR,
                             f"bar detection recall {_f(v)} is below the floor {BAR_RECALL_FLOOR:.2f}"))
        n = sum(int(bar.get(k) or 0) for k in ("tp", "fp", "fn", "tn"))
        base = (int(bar.get("tp") or 0) + int(bar.get("fn") or 0)) / n if n else None
        v = bar.get("precision")
        checks.append(_check("bar detection precision", v, base,
                             v is not None and base is not None and v > base + BAR_PRECISION_MARGIN,
                             f"bar detection precision {_f(v)} is not above {_f(base)}, the share of barred "
                             f"test galaxies (what marking a bar everywhere scores)"))
    bar_truth = report.get("structures", {}).get("bar", {}).get("iou_vs_truth") or {}
    if bar_truth.get("n"):
        v = bar_truth.get("mean_a")
        checks.append(_check("bar IoU vs truth", v, BAR_IOU_FLOOR, v is not None and v >= BAR_IOU_FLOOR,
                             f"bar IoU vs truth {_f(v)} is below the floor {BAR_IOU_FLOOR:.2f}"))
    return _result(checks)


def _f(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _result(checks: list[dict]) -> dict:
    if any(c["passed"] is False for c in checks):
        status = FAILED
    elif any(c["passed"] is None for c in checks):
        status = INCOMPLETE
    else:
        status = PASSED
    return {"status": status, "passed": status == PASSED, "checks": checks,
            "reasons": [c["reason"] for c in checks if not c["passed"]], "floors": floors(),
            "gate_version": GATE_VERSION}


def check_structure(check: dict) -> str | None:
    """The structure a check concerns ("spiral", "bar"), or None for a check of the whole evaluation."""
    first = check["name"].split(" ", 1)[0]
    return first if first in ("spiral", "bar") else None


def passed_for(gate: dict | None, structures) -> bool:
    """Whether every check of ``structures`` (and every check of the whole evaluation) passed."""
    if not gate:
        return False
    checks = [c for c in gate.get("checks") or [] if check_structure(c) in (None, *structures)]
    return any(check_structure(c) in structures for c in checks) and all(c["passed"] is True for c in checks)


def summary(gate: dict | None) -> str:
    """One line for pages and command output."""
    if not gate:
        return "quality gate not checked: evaluate the version on its test split (evaluate_model)"
    if gate.get("status") == PASSED:
        return "passed the quality gate"
    word = "failed" if gate.get("status") == FAILED else "not yet decided by"
    return f"{word} the quality gate: " + "; ".join(gate.get("reasons") or ["no reason recorded"])
