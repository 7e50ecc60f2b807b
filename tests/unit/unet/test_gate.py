"""The quality gate's verdict on a test-split report, in whole and per structure."""
from evalcore.unet import gate


def report(spiral_iou: float, tp: int, fp: int, fn: int, tn: int, bar_iou: float = 0.4) -> dict:
    return {"structures": {"spiral": {"iou_vs_truth": {"mean_a": spiral_iou, "n": 20}},
                           "bar": {"iou_vs_truth": {"mean_a": bar_iou, "n": 6}}},
            "bar_detection": {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
                              "recall": tp / (tp + fn), "precision": tp / (tp + fp) if tp + fp else None}}


ARC = {"mean": 0.40, "n": 20, "n_missing": 0}


def test_a_model_that_calls_every_galaxy_barred_fails_the_bar_checks_but_passes_for_spirals():
    verdict = gate.check(report(0.45, tp=6, fp=14, fn=0, tn=0), ARC)
    assert verdict["status"] == gate.FAILED and not verdict["passed"]
    assert [c["name"] for c in verdict["checks"] if c["passed"] is False] == ["bar detection precision"]
    assert "share of barred test galaxies" in verdict["reasons"][0]
    assert gate.passed_for(verdict, ("spiral",))
    assert not gate.passed_for(verdict, ("bar",)) and not gate.passed_for(verdict, ("spiral", "bar"))


def test_spiral_checks_decide_a_spiral_only_pass():
    below_arc = gate.check(report(0.35, tp=5, fp=1, fn=1, tn=13), ARC)
    assert not gate.passed_for(below_arc, ("spiral",)) and gate.passed_for(below_arc, ("bar",))
    good = gate.check(report(0.45, tp=5, fp=1, fn=1, tn=13), ARC)
    assert good["passed"] and gate.passed_for(good, ("spiral",)) and gate.passed_for(good, ("spiral", "bar"))
    # an undecided spiral check (no arc-finder masks) is no pass; nor is a gate never checked
    undecided = gate.check(report(0.45, tp=5, fp=1, fn=1, tn=13), {"mean": None, "n": 0, "n_missing": 20})
    assert undecided["status"] == gate.INCOMPLETE and not gate.passed_for(undecided, ("spiral",))
    assert not gate.passed_for(None, ("spiral",))
    assert not gate.passed_for(gate.check(None), ("spiral",))
