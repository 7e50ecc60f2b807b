"""Who may open which rating URL: anonymous, a rater of another study, another rater of the same study,
the rater, and staff. Raters see only their own items; staff see everything in the admin and nothing of a
rater's pages unless they rate themselves. Also: a double submit from two tabs, the refusal of training
galaxies unless overridden (and logged), and a pre-registration frozen in the admin once the study opens.
"""
from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from ratings.models import Answer, AnswerRevision, Assignment, BlindingGuess, Invitation, Study
from ratings.services.studies import (
    PanelAnswer,
    StudyError,
    answer_submit,
    study_check,
    study_close,
    study_open,
    study_update,
)
from segmentation.models import Galaxy, ModelVersion, Producer
from tests.factories.studies import ready_rater, spiral_study

ANSWERS = {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 2, "quality_2": 1}




@pytest.fixture
def world(db, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    study = spiral_study(name="Study A", n_galaxies=3, planned_raters=2, raters_per_item=2)
    other_study = spiral_study(name="Study B", n_galaxies=2, planned_raters=1, raters_per_item=1, prefix="ob")
    users = {name: django_user_model.objects.create_user(name, password="pw") for name in
             ("rater", "peer", "outsider")}
    users["staff"] = django_user_model.objects.create_user("staff", password="pw", is_staff=True,
                                                           is_superuser=True)
    rater, peer = ready_rater(study, users["rater"]), ready_rater(study, users["peer"])
    ready_rater(other_study, users["outsider"])
    # the peer answers one item with a comment nobody else may read
    peer_item = Assignment.objects.filter(rater=peer).first()
    answer_submit(assignment=peer_item, answers=[PanelAnswer(i, i + 1, 3 - i) for i in range(3)],
                  comment="peer-secret-comment")
    guess = BlindingGuess.objects.create(rater=rater, candidate=Assignment.objects.filter(rater=rater)
                                         .first().item.candidates.first())
    clients = {"anonymous": Client()}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    return {"study": study, "rater": rater, "peer": peer, "clients": clients, "guess": guess,
            "peer_item": peer_item}


def rater_urls(w) -> dict[str, str]:
    s, a = w["study"].pk, Assignment.objects.filter(rater=w["rater"]).order_by("position").first()
    return {
        "study": reverse("ratings:study", args=[s]),
        "consent": reverse("ratings:consent", args=[s]),
        "profile": reverse("ratings:profile", args=[s]),
        "guide": reverse("ratings:guide", args=[s]),
        "practice": reverse("ratings:practice", args=[s, 0]),
        "practice-png": reverse("ratings:practice-png", args=[s, 0, "p0-mask"]),
        "check": reverse("ratings:blinding", args=[s]),
        "check-png": reverse("ratings:blinding-png", args=[s, w["guess"].token]),
        "item": reverse("ratings:item", args=[a.token]),
        "item-png": reverse("ratings:item-png", args=[a.token, "p1-layer"]),
        "item-image": reverse("ratings:item-png", args=[a.token, "image-asinh"]),
    }


OWNER_STATUS = {"study": 302, "consent": 200, "profile": 200, "guide": 200, "practice": 200, "practice-png": 200,
                "check": 302, "check-png": 200, "item": 200, "item-png": 200, "item-image": 200}


@pytest.mark.parametrize("who", ["anonymous", "outsider", "peer", "staff", "rater"])
def test_permission_matrix_on_every_rater_url(world, who):
    client = world["clients"][who]
    for name, url in rater_urls(world).items():
        r = client.get(url)
        if who == "anonymous":
            assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), (name, r.status_code)
        elif who == "rater":
            assert r.status_code == OWNER_STATUS[name], (name, r.status_code)
        elif who == "peer" and name in ("study", "consent", "profile", "guide", "practice", "practice-png", "check"):
            assert r.status_code == OWNER_STATUS[name], (name, r.status_code)  # the same study's shared pages
        else:
            # another study's rater, a peer on someone else's item or guess, staff who do not rate: nothing,
            # not even whether the token exists
            assert r.status_code == 404, (who, name, r.status_code)
    # nobody but the owner can write the rater's answers
    item = rater_urls(world)["item"]
    r = client.post(item, ANSWERS)
    assert Answer.objects.filter(assignment__rater=world["rater"]).count() == (3 if who == "rater" else 0)
    if who == "anonymous":
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    elif who != "rater":
        assert r.status_code == 404


def test_join_link_home_and_what_raters_never_see(world):
    inv = Invitation.objects.create(study=world["study"], max_uses=1)
    # both planned places are taken: the link says so before anyone makes an account
    full = world["clients"]["anonymous"].get(reverse("ratings:join", args=[inv.token]))
    assert full.status_code == 400 and b"Every planned rater place of this study is taken" in full.content
    assert b"password" not in full.content
    assert world["clients"]["anonymous"].get(reverse("ratings:join", args=["not-a-token"])).status_code == 404
    assert world["clients"]["anonymous"].get(reverse("ratings:home")).status_code == 302
    client = world["clients"]["rater"]
    home = client.get(reverse("ratings:home")).content.decode()
    assert "Study A" in home and "Study B" not in home
    pages = [client.get(url).content.decode() for name, url in rater_urls(world).items()
             if "png" not in name and "image" not in name]
    for html in pages:
        assert "peer-secret-comment" not in html
        assert world["peer"].pseudonym not in html and world["rater"].pseudonym not in html
    # the peer's own item: the rater cannot reach it; staff read everything, raters nothing, in the admin
    assert client.get(reverse("ratings:item", args=[world["peer_item"].token])).status_code == 404
    for url in (reverse("admin:ratings_answer_changelist"), reverse("admin:ratings_study_changelist"),
                reverse("admin:ratings_assignment_changelist"), reverse("admin:ratings_blindingguess_changelist")):
        r = client.get(url)
        assert r.status_code == 302 and "/admin/login/" in r["Location"], url
        r = world["clients"]["staff"].get(url)
        assert r.status_code == 200, url
    staff_answers = world["clients"]["staff"].get(reverse("admin:ratings_answer_changelist")).content.decode()
    assert world["peer"].pseudonym in staff_answers and "GZ3D volunteers" in staff_answers
    assert "peer-secret-comment" in world["clients"]["staff"].get(
        reverse("admin:ratings_assignment_change", args=[world["peer_item"].pk])).content.decode()


def test_double_submit_from_two_tabs_keeps_one_answer_per_panel_and_the_history(world, django_user_model):
    tab1, tab2 = Client(), Client()
    for tab in (tab1, tab2):
        tab.force_login(world["rater"].user)
    url = rater_urls(world)["item"]
    for tab in (tab1, tab1, tab2):  # a double click, then the same form from a second tab
        assert tab.post(url, ANSWERS).status_code == 302
    a = Assignment.objects.get(token=url.strip("/").split("/")[-1])
    assert Answer.objects.filter(assignment=a).count() == 3
    assert not AnswerRevision.objects.filter(answer__assignment=a).exists()
    tab2.post(url, {**ANSWERS, "quality_2": 0})
    assert Answer.objects.filter(assignment=a).count() == 3
    assert list(AnswerRevision.objects.filter(answer__assignment=a).values_list("quality", flat=True)) == [1]
    # a tampered form is refused with a reason and changes nothing
    r = tab1.post(url, {**ANSWERS, "quality_1": 7})
    assert r.status_code == 200 and b"Mask B: the quality must be one of the four levels." in r.content
    assert Answer.objects.get(assignment=a, panel_position=1).quality == 2


def test_a_closed_study_refuses_answers(world):
    url = rater_urls(world)["item"]
    study_close(study=world["study"])
    r = world["clients"]["rater"].post(url, ANSWERS)
    assert r.status_code == 200 and b"This study is closed." in r.content
    assert not Answer.objects.filter(assignment__rater=world["rater"]).exists()


@pytest.fixture
def model_study(db):
    """A draft study whose compared model version trained on two of its four galaxies."""
    study = spiral_study(name="Split study", n_galaxies=4, planned_raters=2, raters_per_item=1, open_it=False,
                        reference=False, prefix="sp")
    producer = Producer.objects.get(kind="model", studies=study)
    galaxies = list(Galaxy.objects.filter(name__startswith="sp").order_by("name"))
    manifest = {"galaxies": [{"galaxy_id": g.pk, "split": s} for g, s in
                             zip(galaxies, ["train", "val", "test", "test"], strict=True)]}
    version = ModelVersion(name="unet v3", producer=producer, config={"encoder": "resnet18"}, weights_sha256="0")
    version.weights.save("w.pt", ContentFile(b"weights"), save=False)
    version.manifest.save("m.json", ContentFile(json.dumps(manifest).encode()), save=False)
    version.save()
    study.test_split_of = version
    study.save()
    return study


def test_training_galaxies_are_refused_unless_the_override_is_recorded(model_study):
    check = study_check(study=model_study)
    assert check.training_galaxies == ["sp0", "sp1"]
    with pytest.raises(StudyError, match="2 galaxies are not in the test split"):
        study_open(study=model_study)
    assert Study.objects.get(pk=model_study.pk).state == "draft"
    study_update(study=model_study, training_override=True,
                 training_override_reason="the model saw them only as validation data; tested apart")
    study_open(study=model_study)
    entry = model_study.log.get(action="opened")
    assert entry.detail["training_galaxies"] == ["sp0", "sp1"]
    assert entry.detail["training_override_reason"].startswith("the model saw them")


def test_admin_shows_the_refusal_and_freezes_the_preregistration(model_study, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("boss", password="pw", is_staff=True,
                                                             is_superuser=True))
    page = client.get(reverse("admin:ratings_study_change", args=[model_study.pk])).content.decode()
    assert "2 galaxies are not in the test split" in page
    r = client.post(reverse("admin:ratings_study_open", args=[model_study.pk]), follow=True)
    assert b"Not opened" in r.content and Study.objects.get(pk=model_study.pk).state == "draft"
    Study.objects.filter(pk=model_study.pk).update(training_override=True, training_override_reason="checked")
    study_open(study=Study.objects.get(pk=model_study.pk))
    # once open, the pre-registered fields are read-only in the admin: a forged POST changes nothing
    page = client.get(reverse("admin:ratings_study_change", args=[model_study.pk])).content.decode()
    assert 'name="planned_raters"' not in page and 'name="primary_question"' not in page
    client.post(reverse("admin:ratings_study_change", args=[model_study.pk]),
                {"name": "Split study", "planned_raters": 99, "primary_question": "changed", "instructions": "",
                 "consent_text": "ok", "invitations-TOTAL_FORMS": 0, "invitations-INITIAL_FORMS": 0})
    s = Study.objects.get(pk=model_study.pk)
    assert (s.planned_raters, s.primary_question) == (2, "Which source marks spiral arms best?")
    with pytest.raises(StudyError, match="frozen"):
        study_update(study=s, planned_raters=99)
