"""A rater's whole path in real Chromium: invitation, consent, profile, guide, practice, then rating with the
keyboard alone, reloading and resuming, and changing an earlier answer; a second rater sees other panel orders.

Screenshots of every step are kept under test-artifacts/browser/ at a 1366x768 laptop size and a 1920x1080
monitor; the layout test checks on the laptop screen that the galaxy picture, the three panels with their
answer buttons and the shortcut list are all inside the first screen, without scrolling.
"""
from __future__ import annotations

import pytest

from ratings import services
from ratings.models import Answer, AnswerRevision, Assignment, Invitation, Rater
from tests.integration.test_rating_data import build_study

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-rater-pass-7"
LAPTOP = {"width": 1366, "height": 768}
MONITOR = {"width": 1920, "height": 1080}


@pytest.fixture
def study(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    s = build_study(n_galaxies=6, planned_raters=3, raters_per_item=2, practice_items=1)  # 4 items each
    # what the opening job does: the live server then serves stored pictures (its in-memory SQLite
    # connection is shared between threads, so concurrent first renders would trip over each other)
    services.study_render_panels(s.pk)
    return s


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(viewport=LAPTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(60_000)  # the shared 2-core machine is sometimes very slow
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def wait_images(page):
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.hidden || (i.complete && i.naturalWidth > 0))")


def sign_up(page, url: str, invitation: Invitation, username: str):
    page.goto(f"{url}/rate/join/{invitation.token}/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/consent/")


def consent_and_profile(page):
    # consent with the keyboard: the box has the focus
    page.wait_for_function("() => document.activeElement && document.activeElement.name === 'agree'")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/profile/")
    page.check("input[name=career_stage][value=postdoc]")
    page.check("input[name=experience][value=expert]")
    page.check("input[name=helped_build][value=no]")
    page.click("button[type=submit]")
    page.wait_for_url("**/guide/")


def start_practice(page):
    """The guide's start link has the focus (autofocus): Enter opens the practice item."""
    page.wait_for_function("() => document.activeElement && document.activeElement.matches('a.primary')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/practice/0/")


def rate_with_keys(page, keys: str):
    """Type a sequence of shortcut keys on the item page, then Enter to save."""
    for k in keys:
        page.keyboard.press(k)
    page.keyboard.press("Enter")


def item_token(page) -> str:
    return page.url.rstrip("/").split("/")[-1]


def test_a_rater_rates_with_the_keyboard_resumes_and_edits(study, live_server, new_page, screenshot):
    url = live_server.url
    invitation = Invitation.objects.create(study=study, max_uses=3)
    page = new_page(LAPTOP)
    sign_up(page, url, invitation, "ann")
    screenshot(page, "consent")
    consent_and_profile(page)
    assert page.locator("h1").inner_text() == "How to rate"
    screenshot(page, "guide")

    start_practice(page)
    wait_images(page)
    assert "not counted" in page.locator(".itembar").inner_text()
    screenshot(page, "practice")
    rate_with_keys(page, "1p2w3o")
    page.wait_for_url("**/rate/a/**")
    assert not Answer.objects.exists()  # practice answers are never stored
    assert Rater.objects.get(user__username="ann").practice_done_at is not None

    rater = Rater.objects.get(user__username="ann")
    total = Assignment.objects.filter(rater=rater).count()
    tokens = []
    # three items with the keyboard alone: rank and quality per panel, the focus moves on by itself
    for n, keys in enumerate(["1p2w3o", "2w1p3f", "1w1w2o"]):
        wait_images(page)
        assert page.locator(".itembar strong").inner_text() == f"{n + 1} of {total}"
        if n == 0:
            screenshot(page, "item-laptop")
        tokens.append(item_token(page))
        rate_with_keys(page, keys)
        page.wait_for_url(lambda u, done=tokens[-1]: done not in u)

    stored = {a.token: {x.panel_position: (x.rank, x.tied, x.quality) for x in a.answers.all()}
              for a in Assignment.objects.filter(token__in=tokens)}
    assert stored[tokens[0]] == {0: (1, False, 3), 1: (2, False, 2), 2: (3, False, 1)}
    assert stored[tokens[1]] == {0: (2, False, 2), 1: (1, False, 3), 2: (3, False, 0)}
    assert stored[tokens[2]] == {0: (1, True, 2), 1: (1, True, 2), 2: (3, False, 1)}  # "can't decide" tie
    assert all(Assignment.objects.get(token=t).seconds_spent > 0 for t in tokens)

    # reload and resume: the fourth item, also from a fresh browser that logs in again
    page.reload()
    assert page.locator(".itembar strong").inner_text() == f"4 of {total}"
    fourth = item_token(page)
    other = new_page(LAPTOP)
    other.goto(f"{url}/accounts/login/?next=/rate/s/{study.pk}/")
    other.fill("#id_username", "ann")
    other.fill("#id_password", PASSWORD)
    other.keyboard.press("Enter")
    other.wait_for_url(f"**/rate/a/{fourth}/")

    # B goes back to the third item, which shows the stored answers; change one with the keyboard
    page.keyboard.press("b")
    page.wait_for_url(f"**/rate/a/{tokens[2]}/")
    assert page.locator("input[name=quality_0][value='2']").is_checked()
    screenshot(page, "back-to-item-3")
    page.keyboard.press("f")  # panel A: "Mostly well" -> "Totally failed"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/rate/a/{fourth}/")
    changed = Answer.objects.get(assignment__token=tokens[2], panel_position=0)
    assert (changed.quality, changed.edits) == (0, 1)
    assert list(AnswerRevision.objects.filter(answer=changed).values_list("quality", "rank")) == [(2, 1)]
    assert Answer.objects.filter(assignment__rater=rater).count() == 9  # no duplicate from the edit


def test_a_second_rater_sees_other_panel_orders(study, live_server, new_page, screenshot):
    invitation = Invitation.objects.create(study=study, max_uses=3)
    for name in ("ann", "bob"):
        page = new_page(MONITOR)
        sign_up(page, live_server.url, invitation, name)
        consent_and_profile(page)
        start_practice(page)
        rate_with_keys(page, "1p2w3o")
        page.wait_for_url("**/rate/a/**")
        wait_images(page)
        screenshot(page, f"item-monitor-{name}")
    ann, bob = (Rater.objects.get(user__username=n) for n in ("ann", "bob"))
    assert ann.slot != bob.slot
    orders = {}
    for rater in (ann, bob):
        for a in Assignment.objects.filter(rater=rater):
            orders.setdefault(a.item_id, {})[rater.pseudonym] = a.panel_order
    shared = {item: o for item, o in orders.items() if len(o) == 2}
    assert shared, "the design gives the two raters at least one item in common"
    assert any(o[ann.pseudonym] != o[bob.pseudonym] for o in shared.values())
    # and their sequences differ
    seq = [list(Assignment.objects.filter(rater=r).order_by("position").values_list("item_id", flat=True))
           for r in (ann, bob)]
    assert seq[0] != seq[1]


@pytest.mark.parametrize("viewport", [LAPTOP, MONITOR], ids=["1366x768", "1920x1080"])
def test_the_item_page_fits_the_first_screen(study, live_server, new_page, screenshot, viewport):
    invitation = Invitation.objects.create(study=study, max_uses=3)
    page = new_page(viewport)
    sign_up(page, live_server.url, invitation, "cat")
    consent_and_profile(page)
    start_practice(page)
    rate_with_keys(page, "1p2w3o")
    page.wait_for_url("**/rate/a/**")
    wait_images(page)
    page.screenshot(path=str(screenshot(page, "full").with_name(
        f"item-first-screen-{viewport['width']}x{viewport['height']}.png")))
    must_show = ["#galaxy-img", ".panel:nth-of-type(1) .stack-view", ".panel:nth-of-type(3) .stack-view",
                 ".panel:nth-of-type(3) .choice.quality", "#save", "details.keys dl"]
    for selector in must_show:
        box = page.locator(selector).first.bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= viewport["width"] + 1, (selector, box)
        assert box["y"] + box["height"] <= viewport["height"] + 1, (selector, box)
    # the galaxy picture is the biggest picture on the page
    galaxy = page.locator("#galaxy-img").bounding_box()
    panel = page.locator(".panel .stack-view").first.bounding_box()
    assert galaxy["width"] > panel["width"] * 1.2
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
