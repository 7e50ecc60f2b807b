"""The guide's reference examples of each quality level, and the panel rendering job run when a study opens."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image as PILImage
from rq.worker import SimpleWorker

from evalsite import queues
from ratings.models import Candidate, PanelImage, Quality, Study
from ratings.services import panels
from ratings.services.studies import rater_join
from tests.factories.studies import spiral, spiral_study


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return (a & b).sum() / max((a | b).sum(), 1)


def test_degraded_copies_get_worse_level_by_level():
    _, arms = spiral(64, 5)
    truth = (arms > 0.2).astype(np.float32)
    scores = [overlap(panels.degraded(truth, level), truth) for level in panels.REFERENCE_LEVELS]
    assert scores[0] == 1.0
    assert scores[0] > scores[1] > scores[2] > scores[3], scores
    assert scores[1] > 0.4 and scores[3] < 0.3, scores  # minor errors stay close; failed is far off
    with pytest.raises(ValueError, match="unknown quality level 7"):
        panels.degraded(truth, 7)


def test_the_guide_shows_every_level_from_a_galaxy_outside_the_study(client, db, django_user_model):
    study = spiral_study(n_galaxies=2, planned_raters=1, raters_per_item=1)
    user = django_user_model.objects.create_user("ref", password="pw")
    rater_join(study=study, user=user)
    client.force_login(user)
    html = client.get(reverse("ratings:guide", args=[study.pk])).content.decode()
    for value, label in Quality.choices:
        assert f"<figcaption>{label}</figcaption>" in html
        layer = client.get(reverse("ratings:guide-png", args=[study.pk, "spiral", value, "layer"]))
        assert layer.status_code == 200 and layer["Content-Type"] == "image/png"
        rgba = np.asarray(PILImage.open(io.BytesIO(layer.content)))
        assert rgba.shape == (panels.PANEL_SIZE, panels.PANEL_SIZE, 4) and rgba[..., 3].any()
    ref = panels.reference_mask(study, "spiral")
    assert ref.galaxy.name == "rg-ref" and not study.items.filter(galaxy=ref.galaxy).exists()
    assert client.get(reverse("ratings:guide-png", args=[study.pk, "bar", 3, "layer"])).status_code == 404
    assert client.get(reverse("ratings:guide-png", args=[study.pk, "spiral", 3, "file"])).status_code == 404


def test_no_examples_without_a_synthetic_truth(client, db, django_user_model):
    study = spiral_study(n_galaxies=2, planned_raters=1, raters_per_item=1, reference=False)
    user = django_user_model.objects.create_user("ref", password="pw")
    rater_join(study=study, user=user)
    client.force_login(user)
    r = client.get(reverse("ratings:guide", args=[study.pk]))
    assert r.status_code == 200 and b"<figure" not in r.content and b"The quality levels" in r.content


def test_opening_in_the_admin_renders_every_panel_on_the_default_queue(client, db, django_user_model,
                                                                       redis_conn,
                                                                       django_capture_on_commit_callbacks):
    study = spiral_study(n_galaxies=3, planned_raters=2, raters_per_item=1, open_it=False)
    client.force_login(django_user_model.objects.create_user("boss", password="pw", is_staff=True,
                                                             is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):  # django-rq sends jobs on commit
        r = client.post(reverse("admin:ratings_study_open", args=[study.pk]), follow=True)
    assert b"its panels are being rendered" in r.content
    assert Study.objects.get(pk=study.pk).state == "open" and not PanelImage.objects.exists()
    queue = queues.get_queue(queues.DEFAULT)
    assert queue.count == 1
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    n_cands = Candidate.objects.filter(item__study=study).count()
    n_items = study.items.count()
    expected = n_cands * len(panels.MASK_VARIANTS) + n_items * len(panels.IMAGE_VARIANTS)
    assert PanelImage.objects.count() == expected
    assert study.log.get(action="panels rendered").detail == {"pictures": expected}
    # served from storage afterwards: the same bytes, no new render
    c = Candidate.objects.filter(item__study=study).first()
    stored = PanelImage.objects.get(candidate=c, variant="mask").file.read()
    assert panels.candidate_png(c, "mask") == stored and PanelImage.objects.count() == expected
