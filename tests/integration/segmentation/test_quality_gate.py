"""The quality gate on real (tiny) trainings and evaluations: what blocks activation, the override, and what
generate_masks says."""
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from evalcore.unet import gate as floors
from segmentation.models import Image, ModelVersion
from segmentation.services import quality_gate, training
from segmentation.services.masks import mask_store
from tests.factories.quality import quality_survey, store_arc_finder, train_version


@pytest.fixture
def survey(db):
    return quality_survey()


@pytest.mark.slow
def test_a_version_below_the_arc_finder_is_never_made_active_and_says_why(survey, capsys):
    store_arc_finder("perfect")
    # through the training service itself: run_train evaluates and gates the version and logs the verdict
    config = {"encoder": "resnet18", "image_size": 32, "epochs": 1, "batch_size": 4, "patience": 5}
    run = training.training_start(config=config, selection={"synthetic": True})
    version = ModelVersion.objects.get(training_run=training.run_train(run_id=run.pk, threads=1))
    gate = version.metrics["gate"]
    truth = version.metrics["evaluation"]["structures"]["spiral"]["iou_vs_truth"]
    assert not version.is_active and not ModelVersion.objects.filter(is_active=True).exists()
    assert gate["status"] == floors.FAILED
    # real numbers: the arc finder drew the truth itself (IoU 1) on every test galaxy with a true spiral
    assert gate["arc_finder"]["mean"] == pytest.approx(1.0) and gate["arc_finder"]["n"] == truth["n"]
    arc_check = next(c for c in gate["checks"] if "arc finder" in c["name"])
    assert arc_check["passed"] is False and arc_check["value"] == pytest.approx(truth["mean_a"])
    assert any("not above the arc finder's 1.000" in r for r in gate["reasons"])
    assert "not made active" in version.training_run.log and "failed the quality gate" in version.training_run.log

    with pytest.raises(quality_gate.GateNotPassed, match="arc finder"):
        training.model_version_activate(version=version)
    version.refresh_from_db()
    assert not version.is_active

    # generate_masks refuses it with the reason, and runs with the explicit flag, warning
    with pytest.raises(CommandError, match="failed the quality gate.*--allow-ungated"):
        call_command("generate_masks", "--source", "model", "--model-version", version.name)
    call_command("generate_masks", "--source", "model", "--model-version", version.name, "--allow-ungated",
                 "--names", "q0")
    out = capsys.readouterr().out
    assert "WARNING" in out and "failed the quality gate" in out

    # a person may override; it is recorded
    training.model_version_activate(version=version, override_gate=True, by="alice")
    version.refresh_from_db()
    assert version.is_active and version.metrics["gate_override"]["by"] == "alice"
    assert "made active anyway by alice" in quality_gate.summary(version)


@pytest.mark.slow
def test_the_same_version_passes_once_it_beats_the_arc_finder_and_the_floors(survey, monkeypatch):
    arcs = store_arc_finder("perfect")
    version = train_version(epochs=1)
    assert quality_gate.gate_of(version)["status"] == floors.FAILED
    # an arc finder that found nothing, and floors below this tiny model's real numbers: the verdict turns
    for image in Image.objects.select_related("galaxy"):
        mask_store(galaxy=image.galaxy, image=image, structure="spiral", producer=arcs, state="empty",
                            numerators=np.zeros((40, 40), np.int64), denominator=1)
    report = version.metrics["evaluation"]
    model_iou = report["structures"]["spiral"]["iou_vs_truth"]["mean_a"]
    assert model_iou > 0
    monkeypatch.setattr(floors, "SPIRAL_IOU_FLOOR", model_iou / 2)
    monkeypatch.setattr(floors, "BAR_RECALL_FLOOR", 0.0)
    monkeypatch.setattr(floors, "BAR_IOU_FLOOR", 0.0)
    verdict = quality_gate.gate_check(version=version)
    bar = next((c for c in verdict["checks"] if c["name"] == "bar detection precision"), None)
    if bar is not None and bar["passed"] is False:  # this tiny model marks bars everywhere: an honest failure
        assert verdict["status"] == floors.FAILED and "share of barred" in " ".join(verdict["reasons"])
        return
    assert verdict["status"] == floors.PASSED and verdict["arc_finder"]["mean"] == 0.0
    assert quality_gate.activate_if_passed(version=version)
    assert ModelVersion.objects.get(is_active=True) == version


@pytest.mark.slow
def test_missing_arc_finder_masks_leave_the_gate_undecided(survey):
    version = train_version(epochs=1)
    gate = quality_gate.gate_of(version)
    assert not version.is_active
    if gate["status"] == floors.INCOMPLETE:
        assert any("generate_masks --source sparcfire" in r for r in gate["reasons"])
    else:  # a failed floor decides before the arc finder is needed
        assert gate["status"] == floors.FAILED
        assert any(c["passed"] is None and "sparcfire" in c["reason"] for c in gate["checks"])
