"""A training run and model mask generation through a real Redis and a burst worker (tiny sizes)."""
import json

import numpy as np
import pytest
from rq.worker import SimpleWorker

from evalcore.sky.splits import split_for
from evalsite import queues
from segmentation import jobs
from segmentation.models import Mask, ModelVersion, RunStatus, TrainingRun
from segmentation.services import generation, training
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.models import disk_with_arm


@pytest.fixture
def labelled(db):
    crowd = producer_get_or_create(kind="volunteers", name="GZ3D", version="test")
    splits = []
    for i in range(24):
        ra, dec = 10.0 + 0.5 * i, -5.0 + 0.3 * i
        g, _ = galaxy_upsert(name=f"t{i}", defaults={"ra": ra, "dec": dec, "synthetic": True})
        rgb, arm = disk_with_arm(40, i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        mask_store(galaxy=g, image=im, structure="spiral", producer=crowd, state="marked",
                   numerators=arm.astype(np.int64) * 10, denominator=15)
        mask_store(galaxy=g, image=im, structure="bar", producer=crowd, state="not_asked")
        splits.append(split_for(ra, dec, name=g.name))
    assert {"train", "val"} <= set(splits)
    return crowd


def work(name):
    queue = queues.get_queue(name)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.mark.slow
def test_training_job_makes_a_model_version_with_provenance_then_masks(labelled, redis_conn,
                                                                      django_capture_on_commit_callbacks):
    config = {"encoder": "resnet18", "image_size": 32, "epochs": 2, "batch_size": 4, "patience": 5}
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.training_launch(config=config, selection={"synthetic": True})
    work(queues.TRAINING)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.current_epoch == 2 and len(run.history) == 2
    assert all(np.isfinite(h["val_loss"]) for h in run.history)
    version = ModelVersion.objects.get(training_run=run)
    # evaluated and gated right after training; active only if it passed (segmentation.services.quality_gate)
    assert version.metrics["gate"]["status"] in ("passed", "failed", "incomplete")
    assert version.is_active == version.metrics["gate"]["passed"] and version.producer.kind == "model"
    assert "quality gate" in run.log
    assert version.package_versions["torch"] and version.code_version
    with version.manifest.open("rb") as fh:
        manifest = json.loads(fh.read())
    assert manifest["augmentation"]["colour_jitter"] is True and manifest["augmentation"]["crop_area"] == [0.6, 0.8]
    names = {g["name"]: g for g in manifest["galaxies"]}
    assert len(names) == 24
    g0 = Mask.objects.get(galaxy__name="t0", structure="spiral", producer=labelled)
    assert names["t0"]["masks"]["spiral"] == g0.content_hash and names["t0"]["masks"]["bar"] == "not asked"

    with django_capture_on_commit_callbacks(execute=True):
        gen = jobs.generation_launch(source="model", galaxies=list(range(1, 10_000)), model_version=version,
                                     chunk_size=10)
    work(queues.GENERATION)
    gen.refresh_from_db()
    assert gen.status == RunStatus.SUCCEEDED and generation.run_progress(run=gen)["done"] == 24
    masks = Mask.objects.filter(producer=version.producer, is_current=True)
    assert masks.count() == 48
    f = masks.filter(structure="spiral").first().fractions()
    assert f.shape == (40, 40) and 0.0 <= f.min() and f.max() <= 1.0


@pytest.mark.slow
def test_a_cancelled_run_resumes_from_its_checkpoint(labelled, redis_conn, django_capture_on_commit_callbacks):
    config = {"encoder": "resnet18", "image_size": 32, "epochs": 3, "batch_size": 4, "patience": 5}
    run = training.training_start(config=config, selection={"synthetic": True})
    seen = []

    def stop_after_first_epoch(report):
        seen.append(report.epoch)
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    training.run_train(run_id=run.pk, on_epoch=stop_after_first_epoch)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.current_epoch >= 1
    with django_capture_on_commit_callbacks(execute=True):
        jobs.training_resume(run=run)
    work(queues.TRAINING)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.current_epoch == 3
    assert "resuming after epoch" in run.log
