"""Practice items come from outside the study: galaxies that are not items of the study (the compared
split's test galaxies last, synthetic galaxies with known truth first), made when the study opens and frozen
with the design; no rater practises on an item they will rate."""
from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from evalcore.sky.splits import split_for
from ratings.models import Assignment, Invitation, Item, Rater, Study
from ratings.services.raters import rater_join
from ratings.services.studies import StudyError, study_check, study_open, study_update
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.studies import SOURCES, make_user, spiral_study

DEC = 5.0


def positions(split_wanted: str, n: int, start: float) -> list[float]:
    """n right ascensions (deg, at DEC) whose sky split is ``split_wanted``."""
    out, ra = [], start
    while len(out) < n:
        if split_for(ra, DEC) == split_wanted:
            out.append(ra)
        ra += 0.05
    return out


def add_galaxy(name: str, ra: float, *, synthetic: bool = False, truth: bool = False, sources=None):
    producers = [producer_get_or_create(kind=k, name=n, version=v) for k, n, v in SOURCES]
    g, _ = galaxy_upsert(name=name, defaults={"ra": ra, "dec": DEC, "synthetic": synthetic})
    im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
    counts = np.zeros((8, 8), np.int64)
    counts[2:5, 2:6] = 1
    for p in producers[: sources or 3]:
        mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked", numerators=counts,
                       denominator=1)
    if truth:
        t = producer_get_or_create(kind="truth", name="synthetic truth", version="1")
        mask_store(galaxy=g, image=im, structure="spiral", producer=t, state="marked", numerators=counts,
                       denominator=1)
    return g


@pytest.fixture
def study(db):
    s = spiral_study(name="Practice study", n_galaxies=4, planned_raters=3, raters_per_item=3, practice_items=0,
                    open_it=False)
    test_ra, train_ra = positions("test", 2, 100.0), positions("train", 3, 140.0)
    add_galaxy("test-split", test_ra[0])  # in the test split: used last
    add_galaxy("test-split-truth", test_ra[1], synthetic=True, truth=True)
    add_galaxy("train-plain", train_ra[0])
    add_galaxy("train-truth", train_ra[1], synthetic=True, truth=True)
    add_galaxy("one-source", train_ra[2], synthetic=True, truth=True, sources=1)  # nothing to compare
    Study.objects.filter(pk=s.pk).update(practice_items=3)
    s.refresh_from_db()
    return s


def test_practice_items_are_galaxies_outside_the_study_chosen_and_frozen_at_opening(study):
    assert study_check(study=study).practice_available == 4
    study_open(study=study)
    practice = list(study.items.filter(kind=Item.Kind.PRACTICE).order_by("id"))
    names = [i.galaxy.name for i in practice]
    assert names == ["train-truth", "train-plain", "test-split-truth"]  # known truth first, test split last
    rated = set(study.items.exclude(kind=Item.Kind.PRACTICE).values_list("galaxy_id", flat=True))
    assert not rated & {i.galaxy_id for i in practice}
    assert all(i.candidates.count() == 3 for i in practice)
    assert study.log.get(action="opened").detail["practice_with_truth"] == 2
    # frozen: galaxies added after opening never change the practice set, nor can its size change
    add_galaxy("late", positions("train", 1, 170.0)[0], synthetic=True, truth=True)
    assert [i.galaxy.name for i in study.items.filter(kind=Item.Kind.PRACTICE).order_by("id")] == names
    with pytest.raises(StudyError, match="practice_items"):
        study_update(study=study, practice_items=5)


def test_no_rater_practises_on_an_item_they_will_rate(client, study):
    study_open(study=study)
    for i in range(3):
        rater_join(study=study, user=make_user(f"prac{i}"))
    for rater in Rater.objects.filter(study=study):
        rated = set(Assignment.objects.filter(rater=rater).values_list("item__galaxy_id", flat=True))
        assert rated
        practice = set(study.items.filter(kind=Item.Kind.PRACTICE).values_list("galaxy_id", flat=True))
        assert not rated & practice
    # what the practice pages serve are those items' masks
    inv = Invitation.objects.create(study=study, max_uses=1)
    Study.objects.filter(pk=study.pk).update(planned_raters=4)
    client.post(reverse("ratings:join", args=[inv.token]),
                {"username": "pat", "password1": "a-long-pass-123", "password2": "a-long-pass-123"})
    client.post(reverse("ratings:consent", args=[study.pk]), {"agree": "yes"})
    client.post(reverse("ratings:profile", args=[study.pk]),
                {"career_stage": "postdoc", "experience": "some", "helped_build": "no"})
    for n in range(3):
        page = client.get(reverse("ratings:practice", args=[study.pk, n]))
        assert f"Practice {n + 1} of 3".encode() in page.content
        assert client.get(reverse("ratings:practice-png", args=[study.pk, n, "p0-mask"])).status_code == 200
    assert client.get(reverse("ratings:practice", args=[study.pk, 3])).status_code == 302


def test_the_admin_freezes_practice_items_when_the_study_opens(client, study):
    make_user("boss", superuser=True)
    client.login(username="boss", password="pw-boss")
    url = reverse("admin:ratings_study_change", args=[study.pk])
    page = client.get(url).content.decode()
    assert 'name="practice_items"' in page and "4 such galaxies available" in page
    study_open(study=study)
    page = client.get(url).content.decode()
    assert 'name="practice_items"' not in page  # read-only, like the rest of the design
