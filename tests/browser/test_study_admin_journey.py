"""An admin's whole study journey in real Chromium at 1366x768, by clicking only: add a study (structures
and sources as named checkboxes, a display override chosen by source name, no ground truth offered outside a
calibration study), choose galaxies (the test split leaves fewer than planned: the page says so and the
shortfall must be accepted), open it, make invitations and copy a link (an absolute URL), close it.

Every step's screenshot is kept under test-artifacts/browser/ (the paths are printed; ``pytest -s`` shows them).
"""
from __future__ import annotations

import pytest

from evalcore.sky.splits import split_for
from ratings.models import Assignment, Invitation, Study
from segmentation.models import Galaxy, Producer
from tests.admin_testdata import make_galaxy
from tests.browser.pages import STAFF_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}


def positions(n_test: int, n_other: int) -> list[tuple[float, float]]:
    """Sky positions: ``n_test`` in the test split's sky cells, then ``n_other`` outside them."""
    test, other = [], []
    i = 0
    while len(test) < n_test or len(other) < n_other:
        ra, dec = 150.0 + 3.0 * i, 2.0 + 1.5 * (i % 20)
        (test if split_for(ra, dec) == "test" else other).append((ra, dec))
        i += 1
    return test[:n_test] + other[:n_other]


@pytest.fixture
def survey(transactional_db):
    """Six galaxies with spiral masks of volunteers, model and arc finder: three in the test split."""
    for i, (ra, dec) in enumerate(positions(3, 3)):
        data = make_galaxy(f"SYN {i:04d}", synthetic=True)
        Galaxy.objects.filter(pk=data.galaxy.pk).update(ra=ra, dec=dec)
    return {p.kind: p for p in Producer.objects.all()}


@pytest.fixture
def admin_page(browser, live_server, staff_user, settings):
    settings.EVALSITE_BASE_URL = live_server.url  # invitation links point at the live server
    context = browser.new_context(viewport=LAPTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    context.set_default_timeout(60_000)  # the shared machine is sometimes slow
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


def messages(page) -> str:
    return " | ".join(page.locator("ul.messagelist li").all_inner_texts())


def test_admin_creates_chooses_opens_invites_and_closes_by_clicking(admin_page, survey, live_server, screenshot,
                                                                    redis_conn):
    page, shots = admin_page, []

    def shot(label):
        shots.append(screenshot(page, label))

    # the admin index lists the studies and the raters' blinding guesses (plural spelled right)
    assert page.get_by_role("link", name="Blinding guesses").count() == 1
    page.get_by_role("link", name="Studies").click()
    page.get_by_role("link", name="Add study").click()
    page.wait_for_url("**/admin/ratings/study/add/")
    shot("add")

    page.fill("#id_name", "Spiral pilot")
    page.get_by_label("Spiral arms").check()
    model, vol, arcs = survey["model"], survey["volunteers"], survey["sparcfire"]
    sources = page.locator("#id_sources")
    for producer in (vol, model, arcs):
        sources.get_by_label(str(producer)).check()
    assert "Ground truth" not in sources.inner_text()  # not a calibration study
    page.locator("#id_display_as_binary").get_by_label(str(arcs)).check()
    page.fill("#id_raters_per_item", "1")
    page.fill("#id_primary_question", "Which source marks spiral arms best?")
    page.fill("#id_planned_items", "6")
    page.fill("#id_planned_raters", "2")
    page.fill("#id_stopping_rule", "Every item rated once.")
    page.click("input[name=_continue]")
    page.wait_for_url("**/change/")
    study = Study.objects.get(name="Spiral pilot")
    assert study.structures == ["spiral"] and set(study.sources.all()) == {vol, model, arcs}
    assert study.display_overrides == {str(arcs.pk): "binary"}
    assert "0 chosen" in page.inner_text("#items-plan")
    shot("saved")

    # choose galaxies: a sample of 6 from the test split only (ticked by default) finds 3
    page.get_by_role("link", name="Choose galaxies").click()
    page.wait_for_url("**/select/")
    assert "6" in page.inner_text("#items-plan")
    page.select_option("#id_mode", "sample")
    page.fill("#id_n", "6")
    assert page.is_checked("#id_test_split_only")
    shot("select")
    page.click("input[type=submit][value='Use these galaxies']")
    page.wait_for_url("**/change/")
    assert "3 items from 3 galaxies (6 asked for, 3 available)" in messages(page)
    plan = page.inner_text("#items-plan")
    assert "3 chosen" in plan and "6 planned" in plan and "A shortfall of 3 items" in plan
    shot("shortfall")

    # "Open the study" really submits: refused, with the shortfall named
    page.click("#open-study")
    page.wait_for_load_state()
    assert "Not opened" in messages(page) and "3 items where 6 are planned" in messages(page)
    assert Study.objects.get(pk=study.pk).state == "draft"
    page.click("#accept-shortfall")
    page.wait_for_load_state()
    assert "Accepted: 3 items instead of the 6 planned" in messages(page)
    shot("accepted")
    page.click("#open-study")
    page.wait_for_load_state()
    assert "Spiral pilot is open" in messages(page), messages(page)
    study.refresh_from_db()
    assert study.state == "open" and Assignment.objects.filter(study=study).count() >= 3
    assert page.locator("#open-study").count() == 0
    shot("open")

    # invitations: two links, shown as absolute URLs with a Copy button
    page.fill("#id_invite_n", "2")
    page.click("#make-invitations-button")
    page.wait_for_load_state()
    assert "2 invitation links made" in messages(page)
    tokens = list(Invitation.objects.filter(study=study).values_list("token", flat=True))
    assert len(tokens) == 2
    shown = page.locator("code.invitation-url").all_inner_texts()
    assert sorted(shown) == sorted(f"{live_server.url}/rate/join/{t}/" for t in tokens)
    first = page.locator("button.copy-link").first
    first.click()
    page.wait_for_function("() => document.querySelector('button.copy-link').textContent === 'Copied'")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied in shown
    shot("invitations")

    # the copied link opens the join page
    visitor = page.context.browser.new_context(viewport=LAPTOP)
    join = visitor.new_page()
    join.goto(copied)
    assert join.locator("#id_username").count() == 1
    visitor.close()

    page.click("#close-study")
    page.wait_for_load_state()
    assert "Spiral pilot is closed" in messages(page)
    assert Study.objects.get(pk=study.pk).state == "closed"
    shot("closed")
    print("screenshots:", *[str(p) for p in shots], sep="\n  ")


def test_the_truth_is_offered_only_in_a_calibration_study(admin_page, survey, live_server, screenshot):
    page, truth = admin_page, survey["truth"]
    page.goto(f"{live_server.url}/admin/ratings/study/add/")
    assert page.locator("#id_sources").get_by_label(str(truth)).count() == 0
    page.fill("#id_name", "Calibration")
    page.get_by_label("Spiral arms").check()
    page.get_by_label("Calibration").check()
    page.locator("#id_sources").get_by_label(str(survey["volunteers"])).check()
    page.click("input[name=_continue]")
    page.wait_for_url("**/change/")
    sources = page.locator("#id_sources")
    sources.get_by_label(str(truth)).check()
    page.click("input[name=_continue]")
    page.wait_for_url("**/change/")
    study = Study.objects.get(name="Calibration")
    assert study.calibration and truth in study.sources.all()
    print("screenshot:", screenshot(page, "calibration"))
