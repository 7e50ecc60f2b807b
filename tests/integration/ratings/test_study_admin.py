"""Staff design a study in the admin: choose galaxies, see the check, open and close it."""
import numpy as np
import pytest
from django.urls import reverse

from ratings.models import Assignment, Study
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create


@pytest.fixture
def draft(db):
    producers = [producer_get_or_create(kind=k, name=k, version="1") for k in ("volunteers", "model")]
    for i in range(6):
        g, _ = galaxy_upsert(name=f"sg{i}", defaults={"ra": 40.0 + i, "dec": 0.5})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
        for p in producers:
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=np.eye(8, dtype=np.int64), denominator=1)
    s = Study.objects.create(name="Admin study", structures=["spiral"], planned_raters=2, raters_per_item=1)
    s.sources.set(producers)
    return s


def test_choose_galaxies_check_open_and_close(admin_client, draft, redis_conn):  # opening queues the panel rendering
    r = admin_client.post(reverse("admin:ratings_study_select", args=[draft.pk]),
                   {"mode": "sample", "n": 4, "seed": 7, "synthetic": "any", "names": ""})
    assert r.status_code == 302
    assert draft.items.count() == 4
    page = admin_client.get(reverse("admin:ratings_study_change", args=[draft.pk])).content.decode()
    assert "pre-registration incomplete: primary_question" in page
    r = admin_client.post(reverse("admin:ratings_study_open", args=[draft.pk]), follow=True)
    assert b"Not opened" in r.content
    Study.objects.filter(pk=draft.pk).update(primary_question="Is the model better?", stopping_rule="all items",
                                             planned_items=4)
    admin_client.post(reverse("admin:ratings_study_open", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.state == "open" and Assignment.objects.filter(study=draft).count() >= 4
    admin_client.post(reverse("admin:ratings_study_close", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.state == "closed"


def test_unknown_names_are_reported(admin_client, draft):
    r = admin_client.post(reverse("admin:ratings_study_select", args=[draft.pk]),
                   {"mode": "names", "names": "sg1\nnope", "synthetic": "any", "seed": 0})
    assert r.status_code == 200 and b"unknown galaxies: nope" in r.content
    assert draft.items.count() == 0
