"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

- ``browser`` (session): headless Chromium from /usr/bin/chromium (never a downloaded build: nothing runs
  ``playwright install``). Missing Chromium skips these tests with the reason, except in CI where it fails.
- ``page``: a fresh browser context and page per test (no shared cookies).
- ``staff_user`` / ``staff_page``: a staff superuser, and a page already signed in to the admin on the
  live server (the login form is really submitted).
- ``screenshot(page, label)``: saves a full-page PNG under test-artifacts/browser/ (gitignored) and
  returns its path, so people (and tests) can look at what the browser drew.

Playwright's sync API runs an event loop in the test thread, which Django would take for async code and
refuse database access from; DJANGO_ALLOW_ASYNC_UNSAFE lets the test thread use the ORM.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django_support import *  # noqa: F403

from tests.browser.pages import STAFF_PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's package: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def staff_user(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="alice", password=STAFF_PASSWORD, email="alice@localhost", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_page(page, live_server, staff_user):
    """A page signed in to the admin as ``alice`` (staff superuser) on the live server."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.live_server_url = live_server.url
    return page


@pytest.fixture
def screenshot(request):
    """``screenshot(page, label)`` -> Path of a full-page PNG named after the test and the label."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(pg, label: str) -> Path:
        path = ARTIFACTS / f"{test}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return take
