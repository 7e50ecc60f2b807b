"""Staff design a study in the admin: choose galaxies, see the check, open and close it."""
import numpy as np
import pytest
from django.urls import reverse

from ratings.models import Assignment, Study
from ratings.services.studies import study_check
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from segmentation.services.truth import TRUTH_PRODUCER


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
    assert r.status_code == 200 and b"no galaxy named nope" in r.content
    assert draft.items.count() == 0


def add_form(**changes) -> dict:
    data = {"name": "Form study", "consent_text": "ok", "structures": ["spiral"], "display": "soft",
            "threshold": "0.5", "raters_per_item": "1", "repeat_rate": "0.05", "attention_rate": "0.03",
            "practice_items": "3", "seed": "0", "invitations-TOTAL_FORMS": "0", "invitations-INITIAL_FORMS": "0",
            "invitations-MIN_NUM_FORMS": "0", "invitations-MAX_NUM_FORMS": "1000", "_continue": "1"}
    data.update(changes)
    return data


def test_structures_and_sources_are_named_checkboxes_and_the_truth_needs_a_calibration_study(admin_client, draft):
    truth = producer_get_or_create(**TRUTH_PRODUCER)
    vol, model = draft.sources.order_by("kind")
    page = admin_client.get(reverse("admin:ratings_study_add")).content.decode()
    assert 'type="checkbox" name="structures" value="spiral"' in page and "Spiral arms" in page
    assert f'type="checkbox" name="sources" value="{vol.pk}"' in page and str(vol) in page
    assert str(truth) not in page and 'name="display_overrides"' not in page  # no JSON of producer ids
    r = admin_client.post(reverse("admin:ratings_study_add"), add_form(sources=[vol.pk, truth.pk]))
    assert r.status_code == 200 and not Study.objects.filter(name="Form study").exists()
    r = admin_client.post(reverse("admin:ratings_study_add"), add_form(sources=[vol.pk, model.pk],
                                                                display_as_binary=[model.pk]))
    assert r.status_code == 302
    made = Study.objects.get(name="Form study")
    assert made.structures == ["spiral"] and made.display_overrides == {str(model.pk): "binary"}
    r = admin_client.post(reverse("admin:ratings_study_change", args=[made.pk]),
                   add_form(sources=[vol.pk, model.pk, truth.pk], calibration="on"))
    assert r.status_code == 302
    made.refresh_from_db()
    assert made.calibration and truth in made.sources.all() and made.display_overrides == {}
    assert str(truth) in admin_client.get(reverse("admin:ratings_study_change", args=[made.pk])).content.decode()


def test_a_shortfall_blocks_opening_until_it_is_accepted(admin_client, draft):
    Study.objects.filter(pk=draft.pk).update(primary_question="q", stopping_rule="all", planned_items=10)
    r = admin_client.post(reverse("admin:ratings_study_select", args=[draft.pk]),
                   {"mode": "sample", "n": 10, "seed": 1, "synthetic": "any", "names": ""}, follow=True)
    assert "6 items from 6 galaxies (10 asked for, 6 available): 4 fewer than the 10 planned" in r.content.decode()
    page = r.content.decode()
    assert "6</strong> chosen" in page and "10</strong> planned" in page and "A shortfall of 4 items" in page
    draft.refresh_from_db()
    assert "6 items where 10 are planned" in "; ".join(study_check(study=draft).blocking)
    admin_client.post(reverse("admin:ratings_study_accept_shortfall", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.shortfall_acknowledged == 6 and not study_check(study=draft).blocking
    # choosing again asks for a new acceptance
    admin_client.post(reverse("admin:ratings_study_select", args=[draft.pk]),
               {"mode": "sample", "n": 3, "seed": 1, "synthetic": "any", "names": ""})
    draft.refresh_from_db()
    assert draft.shortfall_acknowledged is None and study_check(study=draft).blocking


def test_invitation_links_are_absolute_with_a_copy_button(admin_client, draft, settings):
    settings.EVALSITE_BASE_URL = "https://rate.example.org"
    r = admin_client.post(reverse("admin:ratings_study_invite", args=[draft.pk]), {"n": "2", "max_uses": "1"},
                   follow=True)
    page = r.content.decode()
    assert "2 invitation links made" in page
    for inv in draft.invitations.all():
        url = f"https://rate.example.org/rate/join/{inv.token}/"
        assert f'<code class="invitation-url">{url}</code>' in page and f'data-url="{url}"' in page
    r = admin_client.post(reverse("admin:ratings_study_invite", args=[draft.pk]), {"n": "²"}, follow=True)
    assert "No invitation made" in r.content.decode() and draft.invitations.count() == 2


def test_the_admin_index_says_blinding_guesses(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "Blinding guesses" in page and "Blinding guesss" not in page
