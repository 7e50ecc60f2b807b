"""A rater's whole path in real Chromium: invitation, consent, profile, guide, practice, then rating with the
keyboard alone, reloading and resuming, and changing an earlier answer; a second rater sees other panel orders.

Screenshots of every step are kept under test-artifacts/browser/ at a 1366x768 laptop size and a 1920x1080
monitor; the layout test checks on the laptop screen that the galaxy picture, the three panels with their
answer buttons and the shortcut list are all inside the first screen, without scrolling.
"""
from __future__ import annotations

import pytest

from ratings.models import Answer, AnswerRevision, Assignment, Invitation, Rater
from ratings.services.studies import study_render_panels
from tests.browser.pages import LAPTOP, PASSWORD, consent_and_profile, sign_up, wait_images
from tests.factories.studies import spiral_study

pytestmark = pytest.mark.django_db(transaction=True)

MONITOR = {"width": 1920, "height": 1080}


@pytest.fixture
def study(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    s = spiral_study(n_galaxies=6, planned_raters=3, raters_per_item=2, practice_items=1)  # 4 items each
    # what the opening job does: the live server then serves stored pictures (its in-memory SQLite
    # connection is shared between threads, so concurrent first renders would trip over each other)
    study_render_panels(study=s)
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


def tab_to(page, selector: str, limit: int = 40):
    """Press Tab until the element matching ``selector`` has the focus, as a keyboard user does."""
    for _ in range(limit):
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus in {limit} presses of Tab")


def wait_focus(page, selector: str):
    """Wait until the page's autofocus has landed on ``selector``, as a keyboard user waits for the page to
    settle before typing (Chromium may apply autofocus a moment after the load event)."""
    page.wait_for_function("(s) => !!document.activeElement && document.activeElement.matches(s)", arg=selector)


def press_and_wait(page, key: str):
    with page.expect_navigation():
        page.keyboard.press(key)


def test_a_raters_whole_path_with_the_keyboard_from_invitation_to_thank_you_and_back(
        transactional_db, settings, live_server, new_page, screenshot):
    """Invitation link -> sign-up -> consent -> profile -> guide -> practice -> every item -> blinding check
    -> thank-you page -> back to an answered item from there -> changed -> thank-you page again; then home ->
    "Review answers" leads to the same way back, not to a dead end. Keyboard only, 1366x768."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    s = spiral_study(name="Keyboard study", n_galaxies=3, planned_raters=1, raters_per_item=1, practice_items=1)
    study_render_panels(study=s)
    invitation = Invitation.objects.create(study=s)
    page = new_page(LAPTOP)

    page.goto(f"{live_server.url}/rate/join/{invitation.token}/")
    screenshot(page, "01-join")
    wait_focus(page, "#id_username")
    page.keyboard.type("dora")  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    press_and_wait(page, "Enter")
    assert page.url.endswith("/consent/")
    screenshot(page, "02-consent")
    wait_focus(page, "input[name=agree]")
    page.keyboard.press("Space")  # the box has the focus
    press_and_wait(page, "Enter")
    assert page.url.endswith("/profile/")
    wait_focus(page, "input[name=career_stage]")
    page.keyboard.press("ArrowDown")  # career stage: Student -> Postdoc
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # experience: None
    page.keyboard.press("ArrowDown")  # -> Some
    page.keyboard.press("ArrowDown")  # -> Expert
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # helped build: No
    screenshot(page, "03-profile")
    press_and_wait(page, "Enter")
    rater = Rater.objects.get(user__username="dora")
    assert (rater.career_stage, rater.experience, rater.helped_build) == ("postdoc", "expert", False)
    assert page.url.endswith("/guide/")
    screenshot(page, "04-guide")
    wait_focus(page, "a.primary")
    press_and_wait(page, "Enter")  # the start link has the focus
    wait_images(page)
    screenshot(page, "05-practice")
    rate_with_keys(page, "1p2w3o")
    page.wait_for_url("**/rate/a/**")

    tokens = list(Assignment.objects.filter(rater=rater).order_by("position").values_list("token", flat=True))
    for n, token in enumerate(tokens):
        page.wait_for_url(f"**/rate/a/{token}/")
        wait_images(page)
        if n == 0:
            # a comment over the limit is refused in words, and nothing the rater entered is lost
            for k in "1p2w3o":
                page.keyboard.press(k)
            page.keyboard.press("c")
            page.keyboard.insert_text("long " * 500)  # 2,500 characters, pasted
            assert "over the limit of 2000" in page.locator("#comment-count").inner_text()
            page.keyboard.press("Escape")
            press_and_wait(page, "Enter")
            screenshot(page, "06-comment-refused")
            assert "Your comment has 2,500 characters; the limit is 2,000" in page.locator(".message").inner_text()
            assert page.locator("#comment").input_value().startswith("long long")
            assert page.locator("input[name=quality_2][value='1']").is_checked()
            assert not Answer.objects.filter(assignment__token=token).exists()
            page.keyboard.press("c")
            page.keyboard.press("Control+A")
            page.keyboard.type("arms faint")
            page.keyboard.press("Escape")
            press_and_wait(page, "Enter")
        else:
            rate_with_keys(page, "2w1p3f")
            page.wait_for_url(lambda u, t=token: t not in u)
    assert Assignment.objects.get(token=tokens[0]).comment == "arms faint"

    page.wait_for_url("**/check/")
    screenshot(page, "07-blinding-check")
    tab_to(page, "input[type=radio]")
    page.keyboard.press("Space")
    press_and_wait(page, "Enter")
    assert page.locator("h1").inner_text() == "Thank you"
    screenshot(page, "08-thank-you")
    assert f"You have rated {len(tokens)} of {len(tokens)} items" in page.locator("main").inner_text()

    # back from the thank-you page to the second item, change one answer, and land on the thank-you page again
    tab_to(page, "a[aria-label='change the answer to item 2']")
    press_and_wait(page, "Enter")
    assert page.url.endswith(f"/rate/a/{tokens[1]}/")
    wait_images(page)
    assert page.locator("input[name=quality_2][value='0']").is_checked()  # the stored answer is shown
    screenshot(page, "09-back-to-item-2")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # panel C
    page.keyboard.press("o")  # "Totally failed" -> "Mostly poorly"
    press_and_wait(page, "Enter")
    assert page.locator("h1").inner_text() == "Thank you"
    changed = Answer.objects.get(assignment__token=tokens[1], panel_position=2)
    assert (changed.quality, changed.edits) == (1, 1)
    assert list(AnswerRevision.objects.filter(answer=changed).values_list("quality", flat=True)) == [0]

    # home -> "Review answers" -> the thank-you page with its way back, not a dead end
    tab_to(page, "main a[href='/rate/']")
    press_and_wait(page, "Enter")
    screenshot(page, "10-home")
    tab_to(page, "main a.button")
    assert page.evaluate("document.activeElement.textContent").strip() == "Review answers"
    press_and_wait(page, "Enter")
    tab_to(page, "a[aria-label='change the answer to item 1']")
    press_and_wait(page, "Enter")
    assert page.url.endswith(f"/rate/a/{tokens[0]}/")
    assert page.locator("#comment").input_value() == "arms faint"
    screenshot(page, "11-back-to-item-1")
