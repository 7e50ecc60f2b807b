"""The matched display in Chromium at 1366x768: a panel saying "Nothing marked" keeps its controls level
with the other panels, and the blinding check shows only panels with something drawn, with Send on the
first screen."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from ratings.models import Assignment, Candidate, Invitation, Rater
from ratings.services.answers import PanelAnswer, answer_submit
from ratings.services.studies import study_render_panels
from tests.browser.pages import LAPTOP, consent_and_profile, sign_up, wait_images
from tests.factories.blinding_study import build_blinding_study

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def study(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    s = build_blinding_study(3, name="Browser blinding", prefix="bb", planned_raters=1)
    study_render_panels(study=s)
    return s


def test_empty_panel_keeps_rows_even_and_check_page_fits(study, live_server, browser, screenshot):
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(60_000)
    page = context.new_page()
    invitation = Invitation.objects.create(study=study, max_uses=1)
    sign_up(page, live_server.url, invitation, "blindcat")
    consent_and_profile(page)
    rater = Rater.objects.get(user__username="blindcat")
    # the item whose arc-finder spiral mask is empty (galaxy bb0)
    empty = Assignment.objects.get(rater=rater, item__galaxy__name="bb0", item__structure="spiral")
    kinds = dict(Candidate.objects.filter(pk__in=empty.panel_order).values_list("pk", "mask__state"))
    assert "empty" in kinds.values()
    page.goto(f"{live_server.url}/rate/a/{empty.token}/")
    wait_images(page)
    screenshot(page, "empty-panel-row")
    labels = page.locator(".panel .nothing-marked")
    assert labels.count() == 1 and labels.first.is_visible()
    tops = [page.locator(f".panel:nth-of-type({i}) .choice.rank").bounding_box()["y"] for i in (1, 2, 3)]
    assert max(tops) - min(tops) < 1, tops
    heights = [page.locator(f".panel:nth-of-type({i})").bounding_box()["height"] for i in (1, 2, 3)]
    assert max(heights) - min(heights) < 1, heights

    Rater.objects.filter(pk=rater.pk).update(practice_done_at=timezone.now())  # this study has no practice
    for a in Assignment.objects.filter(rater=rater):  # the rest of the study, answered through the service
        n = len(a.panel_order)
        answer_submit(assignment=a, answers=[PanelAnswer(i, i + 1, 2) for i in range(n)])
    page.goto(f"{live_server.url}{reverse('ratings:blinding', args=[study.pk])}")
    wait_images(page)
    screenshot(page, "blinding-check-1366x768")
    send = page.locator("button.primary", has_text="Send").bounding_box()
    assert send["y"] + send["height"] <= LAPTOP["height"], send
    assert page.evaluate("document.documentElement.scrollHeight") <= LAPTOP["height"] + 1
    sources = [img.get_attribute("src") for img in page.locator(".guess img").all()]
    assert len(sources) == 3
    for src in sources:  # no all-black check panel
        data = page.request.get(f"{live_server.url}{src}").body()
        assert np.asarray(Image.open(io.BytesIO(data))).any(), src
    page.locator(".guess").first.locator("input[type=radio]").first.check()
    page.locator("button.primary", has_text="Send").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Thank you"
    context.close()
