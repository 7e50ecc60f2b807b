"""A launch while Redis is unreachable is recorded on the run (with Resume offered), never a half state."""
import socket

import numpy as np
import pytest

from segmentation import jobs
from segmentation.models import GenerationRun, RunStatus, TrainingRun
from segmentation.services.galaxies import galaxy_upsert, image_store


@pytest.fixture
def no_redis(settings):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    settings.RQ_QUEUES = {name: {**conf, "URL": url} for name, conf in settings.RQ_QUEUES.items()}


def test_generation_launched_without_redis_fails_with_the_reason(db, no_redis, django_capture_on_commit_callbacks):
    g, _ = galaxy_upsert(name="q1", defaults={"ra": 1.0, "dec": 1.0})
    image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((40, 40, 3), np.uint8))
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.generation_launch(source="sparcfire", galaxies=[g])
    run = GenerationRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.FAILED and "queue unavailable" in run.error
    assert run.chunks.get().status == RunStatus.FAILED


def test_training_launched_without_redis_fails_with_the_reason(db, no_redis, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.training_launch(config={"epochs": 1})
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.FAILED and "queue unavailable" in run.error
