"""Starting, watching, cancelling and resuming background runs from the admin."""
import numpy as np
import pytest
from django.urls import reverse

from evalsite import queues
from segmentation.models import GenerationRun, RunStatus, TrainingRun
from segmentation.services.galaxies import galaxy_upsert, image_store


@pytest.fixture
def galaxies(db):
    for i in range(5):
        g, _ = galaxy_upsert(name=f"adm{i}", defaults={"ra": 20.0 + i, "dec": -3.0})
        image_store(galaxy=g, kind="survey_cutout", rgb=np.full((40, 40, 3), 30 * i, np.uint8))


def test_staff_start_generation_from_the_admin_and_watch_it(admin_client, galaxies, redis_conn,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:segmentation_generationrun_add"),
                              {"source": "sparcfire", "galaxies": "any", "names": "", "image_kind": "survey_cutout",
                               "chunk_size": 2})
    run = GenerationRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    assert run.chunks.count() == 3 and run.total == 5
    assert queues.get_queue(queues.GENERATION).count == 3
    page = admin_client.get(reverse("admin:segmentation_generationrun_change", args=[run.pk]))
    assert b"0</b> of 5 galaxies" in page.content
    status = admin_client.get(reverse("admin:segmentation_generationrun_status", args=[run.pk]))
    assert status.status_code == 200 and b'data-status="queued"' in status.content
    admin_client.post(reverse("admin:segmentation_generationrun_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.cancel_requested and run.status == RunStatus.CANCELLED


def test_generation_from_the_admin_for_one_split(admin_client, galaxies, redis_conn,
                                                 django_capture_on_commit_callbacks):
    from evalcore.sky.splits import split_for
    from segmentation.models import Galaxy

    by_split = {}
    for g in Galaxy.objects.all():
        by_split.setdefault(split_for(g.ra, g.dec, name=g.name), set()).add(g.pk)
    split, expected = max(by_split.items(), key=lambda kv: len(kv[1]))
    assert len(expected) < 5  # the fixture's galaxies fall in more than one split
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:segmentation_generationrun_add"),
                              {"source": "sparcfire", "galaxies": "any", "split": split, "names": "",
                               "image_kind": "survey_cutout", "chunk_size": 10})
    run = GenerationRun.objects.get()
    assert response.status_code == 302 and run.total == len(expected) and run.selection["split"] == split
    assert {g for c in run.chunks.all() for g in c.galaxy_ids} == expected


def test_model_generation_without_a_model_is_refused_with_a_reason(admin_client, galaxies):
    response = admin_client.post(reverse("admin:segmentation_generationrun_add"),
                          {"source": "model", "galaxies": "any", "image_kind": "survey_cutout", "chunk_size": 2})
    assert response.status_code == 200 and b"no model version" in response.content
    assert not GenerationRun.objects.exists()


def test_start_training_form_validates_and_enqueues(admin_client, redis_conn, django_capture_on_commit_callbacks):
    bad = admin_client.post(reverse("admin:segmentation_trainingrun_add"), {"encoder": "resnet18", "image_size": 128,
                                                                     "epochs": 0, "batch_size": 4})
    assert bad.status_code == 200 and not TrainingRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin_client.post(reverse("admin:segmentation_trainingrun_add"),
                        {"encoder": "resnet18", "image_size": 64, "field_of_view": 0.5, "epochs": 2, "batch_size": 4,
                         "learning_rate": 0.001, "loss": "l1", "galaxies": "any", "image_kind": "survey_cutout"})
    run = TrainingRun.objects.get()
    assert ok.status_code == 302
    assert run.config["unet"]["image_size"] == 64 and run.total_epochs == 2
    assert run.config["unet"]["field_of_view"] == 0.5
    job_ids = queues.get_queue(queues.TRAINING).job_ids
    assert job_ids == [run.job_id]


@pytest.mark.parametrize("name", ["trainingrun", "generationrun"])
def test_run_pages_are_staff_only(client, stranger, name):
    user = stranger
    for url in (reverse(f"admin:segmentation_{name}_changelist"), reverse(f"admin:segmentation_{name}_add")):
        assert client.get(url).status_code == 302  # anonymous -> login
        client.force_login(user)
        assert client.get(url).status_code == 302  # not staff -> login
        client.logout()
