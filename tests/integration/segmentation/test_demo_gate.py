"""The demo trains by rounds until its model passes the quality gate, or says plainly that none did; its
study only ever uses a gated version (real tiny trainings and evaluations)."""
import pytest

from evalcore.unet import gate as floors
from evalsite import demo
from ratings.models import Study
from segmentation.models import Image, ModelVersion, Producer, TrainingRun
from segmentation.services import quality_gate, training
from tests.factories.quality import quality_survey, store_arc_finder

TINY = {"encoder": "resnet18", "image_size": 32, "epochs": 1, "batch_size": 4, "patience": 5}



@pytest.fixture
def survey(db):
    return quality_survey()


@pytest.mark.slow
def test_no_gated_model_no_study_and_the_demo_says_why(survey, monkeypatch):
    store_arc_finder("perfect")  # no tiny model beats an arc finder that draws the truth
    monkeypatch.setattr(demo, "DEMO_ROUNDS", 2)
    monkeypatch.setattr(demo, "DEMO_EXTRA_EPOCHS", 1)
    run = training.training_start(config=TINY, selection={"synthetic": True}, requested_by="demo")

    result = demo.demo_pipeline(run.pk, wait_seconds=0)

    assert result.startswith("NO DEMO MODEL") and "2 training rounds" in result and "arc finder" in result
    runs = list(TrainingRun.objects.order_by("pk"))
    assert len(runs) == 2 and runs[1].config["continues_run"] == runs[0].pk and runs[1].total_epochs == 2
    assert "continuing training run" in runs[1].log and "extending from 1 to 2 epochs" in runs[1].log
    assert "NO DEMO MODEL" in runs[1].log
    assert ModelVersion.objects.count() == 2 and not ModelVersion.objects.filter(is_active=True).exists()
    assert not Study.objects.exists()


@pytest.mark.slow
def test_the_demo_stops_at_the_first_round_that_passes(survey, monkeypatch):
    arcs = store_arc_finder("empty")
    assert arcs.kind == Producer.Kind.SPARCFIRE and Image.objects.count() == 24
    # floors a tiny model can meet (its real evaluation numbers decide; only the bar is lenient here)
    monkeypatch.setattr(floors, "SPIRAL_IOU_FLOOR", 0.0)
    monkeypatch.setattr(floors, "BAR_RECALL_FLOOR", 0.0)
    monkeypatch.setattr(floors, "BAR_IOU_FLOOR", 0.0)
    monkeypatch.setattr(floors, "BAR_PRECISION_MARGIN", -1.0)
    run = training.training_start(config=TINY, selection={"synthetic": True}, requested_by="demo")

    version, message = demo.train_until_gated(run.pk, rounds=3, extra_epochs=1, wait_seconds=0)

    assert version is not None, message
    model_iou = version.metrics["evaluation"]["structures"]["spiral"]["iou_vs_truth"]["mean_a"]
    if model_iou == 0:  # an arc finder that found nothing is not beaten by a model that found nothing either
        pytest.skip("this tiny model marked no spiral pixel above its threshold")
    assert message == "passed the quality gate in round 1" and TrainingRun.objects.count() == 1
    assert version.is_active and quality_gate.passed(version)
    assert quality_gate.gate_of(version)["arc_finder"]["mean"] == 0.0


@pytest.mark.slow
def test_a_version_that_fails_only_the_bar_checks_serves_the_spiral_demo_study_but_is_not_made_active(
        survey, monkeypatch):
    store_arc_finder("empty")
    monkeypatch.setattr(floors, "SPIRAL_IOU_FLOOR", 0.0)
    monkeypatch.setattr(floors, "BAR_RECALL_FLOOR", 1.01)  # no model reaches it: the bar checks fail
    run = training.training_start(config=TINY, selection={"synthetic": True}, requested_by="demo")

    version, message = demo.train_until_gated(run.pk, rounds=2, extra_epochs=1, wait_seconds=0)

    if version is None and "spiral IoU vs truth 0.000" in message:
        pytest.skip("this tiny model marked no spiral pixel above its threshold")
    assert version is not None, message
    assert message.startswith("passed the quality gate's spiral checks in round 1, which the demo study needs")
    assert "not made active, because it failed the quality gate: bar detection recall" in message
    assert quality_gate.passed(version, structures=("spiral",)) and not quality_gate.passed(version)
    assert not ModelVersion.objects.filter(is_active=True).exists() and TrainingRun.objects.count() == 1
    assert "which the demo study needs" in TrainingRun.objects.get().log
