"""Accounts as people meet them in Chromium: the log-in limit under another spelling of the same name, a
taken name on the join form, and an invitation link used up while someone was filling in the form.
Everything is typed and clicked; nothing is posted behind the page's back."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches

from evalsite.accounts import UNAVAILABLE
from ratings.models import Invitation, Rater
from tests.factories.studies import spiral_study

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-rater-pass-7"
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(autouse=True)
def _fresh_log_in_counters(transactional_db, settings):
    """The counters live in a cache table that a transactional test's flush does not empty."""
    caches[settings.EVALSITE_LOGIN_RATELIMIT_CACHE].clear()
    yield
    caches[settings.EVALSITE_LOGIN_RATELIMIT_CACHE].clear()


@pytest.fixture
def study(transactional_db):
    return spiral_study(name="Accounts study", n_galaxies=2, planned_raters=3, raters_per_item=1)


@pytest.fixture
def new_page(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport=LAPTOP)
        context.set_default_timeout(60_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def fill_sign_up(page, username: str, password: str = PASSWORD):
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)


def log_in(page, url: str, username: str, password: str):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_the_log_in_limit_counts_every_spelling_of_a_name_once(live_server, new_page, settings, screenshot):
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_USER = 5
    get_user_model().objects.create_user("rater1", password=PASSWORD)
    page = new_page()
    for _ in range(5):
        log_in(page, live_server.url, "rater1", "not-the-password")
        assert "correct username and password" in page.content()
    log_in(page, live_server.url, "ｒater1", PASSWORD)  # full-width r, the right password
    screenshot(page, "refused")
    assert "Too many failed log-in attempts for this username" in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/rate/")
    assert "/accounts/login/" in page.url  # not signed in


def test_another_spelling_of_a_name_logs_in_to_the_same_account(live_server, new_page):
    user = get_user_model().objects.create_user("rater1", password=PASSWORD)
    page = new_page()
    log_in(page, live_server.url, "ＲＡＴＥＲ１", PASSWORD)
    page.goto(f"{live_server.url}/rate/")
    assert page.locator("header .who").inner_text().startswith(user.username)


def test_a_taken_name_is_refused_without_saying_that_it_exists(study, live_server, new_page, screenshot):
    get_user_model().objects.create_user("rater1", password="someone-elses-pass-1")
    invitation = Invitation.objects.create(study=study, max_uses=2)
    page = new_page()
    page.goto(f"{live_server.url}/rate/join/{invitation.token}/")
    fill_sign_up(page, "Ｒater1")
    with page.expect_navigation():
        page.click("button[type=submit]")
    screenshot(page, "refused")
    text = page.locator("main").inner_text()
    assert UNAVAILABLE in text
    assert "exist" not in text.lower() and "taken" not in text.lower()
    assert get_user_model().objects.count() == 1
    # another name goes through
    fill_sign_up(page, "rater2")
    page.click("button[type=submit]")
    page.wait_for_url("**/consent/")
    assert Rater.objects.filter(user__username="rater2", study=study).exists()


def test_a_link_used_up_while_the_form_was_open_makes_no_account(study, live_server, new_page, screenshot):
    invitation = Invitation.objects.create(study=study, max_uses=1)
    late, first = new_page(), new_page()
    link = f"{live_server.url}/rate/join/{invitation.token}/"
    late.goto(link)
    fill_sign_up(late, "latecomer")
    first.goto(link)  # someone else uses the one-person link meanwhile
    fill_sign_up(first, "first")
    first.click("button[type=submit]")
    first.wait_for_url("**/consent/")
    with late.expect_navigation():
        late.click("button[type=submit]")
    screenshot(late, "refused")
    assert "not valid any more" in late.locator("main").inner_text()
    assert not get_user_model().objects.filter(username="latecomer").exists()
    late.goto(f"{live_server.url}/rate/")
    assert "/accounts/login/" in late.url  # nobody was logged in
    # opening the used-up link again shows the reason and no form at all
    late.goto(link)
    assert "not valid any more" in late.locator("main").inner_text()
    assert late.locator("#id_username").count() == 0
