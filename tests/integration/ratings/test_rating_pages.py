"""The rater's path through a study with the Django test client; blinding of what a rater receives."""
import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image as PILImage

from ratings.models import Answer, Assignment, Candidate, Study
from ratings.services.studies import study_open, study_set_items
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.walks import walk_to_items

SOURCE_WORDS = ["volunteer", "gz3d", "model", "unet", "sparcfire", "arc", "producer", "truth", "/media/", "masks/"]


@pytest.fixture
def study(db):
    producers = [producer_get_or_create(kind=k, name=f"{k}-name", version="v1") for k in
                 ("volunteers", "model", "sparcfire")]
    galaxies = []
    for i in range(4):
        g, _ = galaxy_upsert(name=f"rg{i}", defaults={"ra": 30.0 + i, "dec": 1.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.full((24, 24, 3), 40 + i, np.uint8))
        for j, p in enumerate(producers):
            counts = np.zeros((24, 24), np.int64)
            counts[2 + 5 * j:8 + 5 * j, 4:20] = 1 + j
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=counts, denominator=3)
        galaxies.append(g)
    s = Study.objects.create(name="Demo study", structures=["spiral"], primary_question="q", planned_items=4,
                             planned_raters=3, raters_per_item=2, stopping_rule="all done", seed=1,
                             repeat_rate=0, attention_rate=0, practice_items=1)
    s.sources.set(producers)
    study_set_items(study=s, galaxies=galaxies)
    study_open(study=s)
    return s




def test_a_rater_joins_practises_rates_and_can_go_back(client, study):
    walk_to_items(client, study)
    r = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    n = Assignment.objects.filter(rater__user__username="ann").count()
    assert r.status_code == 200 and f"<strong>1 of {n}</strong>".encode() in r.content
    token = r.redirect_chain[-1][0].rstrip("/").split("/")[-1]
    answers = {"rank_0": 2, "rank_1": 1, "rank_2": 2, "quality_0": 2, "quality_1": 3, "quality_2": 1,
               "seconds": "12.5", "comment": "fine"}
    r = client.post(reverse("ratings:item", args=[token]), answers)
    assert r.status_code == 302
    a = Assignment.objects.get(token=token)
    stored = {x.panel_position: (x.rank, x.tied, x.quality) for x in a.answers.all()}
    assert stored == {0: (2, True, 2), 1: (1, False, 3), 2: (2, True, 1)}
    assert a.seconds_spent == 12.5
    # the double submit of the same form stores nothing new
    client.post(reverse("ratings:item", args=[token]), answers)
    assert Answer.objects.filter(assignment=a).count() == 3
    # back to the first item: the stored answers are shown checked
    page = client.get(reverse("ratings:item", args=[token])).content.decode()
    assert re.search(r'name="quality_1" value="3" checked', page)


def test_nothing_identifying_a_source_reaches_the_rater(client, study):
    walk_to_items(client, study)
    r = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    token = r.redirect_chain[-1][0].rstrip("/").split("/")[-1]
    # random strings (the item's token, the CSRF token) can spell a short word like "arc" by chance
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", r.content.decode()).replace(token, "").lower()
    for word in SOURCE_WORDS:
        assert word not in html, word
    pngs = set(re.findall(r'src="([^"]+\.png)"', r.content.decode()))
    assert len(pngs) >= 7  # galaxy picture + mask and layer of 3 panels
    sizes = set()
    for url in pngs:
        assert token in url
        resp = client.get(url)
        assert resp.status_code == 200 and resp["Content-Type"] == "image/png"
        for header in ("Last-Modified", "ETag", "Content-Disposition", "Location"):
            assert header not in resp
        body = resp.content
        assert b"tEXt" not in body and b"tIME" not in body and b"iTXt" not in body
        sizes.add(body[16:24])  # IHDR width and height
    assert len(sizes) == 1


def test_other_people_cannot_open_a_raters_item(client, django_user_model, study):
    walk_to_items(client, study)
    token = Assignment.objects.filter(rater__user__username="ann").first().token
    client.logout()
    assert client.get(reverse("ratings:item", args=[token])).status_code == 302  # to login
    django_user_model.objects.create_user("eve", password="pw")
    client.login(username="eve", password="pw")
    assert client.get(reverse("ratings:item", args=[token])).status_code == 404
    assert client.get(reverse("ratings:item-png", args=[token, "p0-mask"])).status_code == 404
    assert client.get(reverse("ratings:study", args=[study.pk])).status_code == 404


def test_an_empty_mask_is_an_empty_panel_saying_nothing_marked(client, study):
    walk_to_items(client, study)
    a = Assignment.objects.filter(rater__user__username="ann").order_by("position").first()
    cand = Candidate.objects.get(pk=a.panel_order[-1])
    empty = mask_store(galaxy=cand.mask.galaxy, image=cand.mask.image, structure="spiral",
                       producer=cand.producer, state="empty", numerators=np.zeros((24, 24), np.int64),
                       denominator=3).mask
    Candidate.objects.filter(pk=cand.pk).update(mask=empty)
    page = client.get(reverse("ratings:item", args=[a.token])).content.decode()
    assert page.count("Nothing marked") == 1
    mask_png = client.get(reverse("ratings:item-png", args=[a.token, f"p{len(a.panel_order) - 1}-mask"])).content
    with PILImage.open(io.BytesIO(mask_png)) as img:
        assert not np.asarray(img).any()
