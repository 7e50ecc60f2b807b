"""The staff dashboard in a real browser: figures load, the numbers open with one click, the page is
readable at a laptop width (screenshots under test-artifacts/browser/ for people to look at)."""
from __future__ import annotations

import pytest

from ratings.services.studies import study_close
from tests.factories.studies import answer_study, dashboard_study


@pytest.mark.slow
def test_dashboard_shows_progress_then_outcomes(staff_page, screenshot):
    study = dashboard_study()
    answer_study(study, fraction=0.7)
    page = staff_page
    page.goto(f"{page.live_server_url}/staff/ratings/{study.pk}/")
    assert page.locator("#outcomes-hidden").is_visible()
    assert page.locator("#progress-table tbody tr").count() == 6
    screenshot(page, "open")

    study_close(study=study)
    page.goto(f"{page.live_server_url}/staff/ratings/{study.pk}/")
    images = page.locator("figure img")
    assert images.count() == 6
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
    numbers = page.locator("#pairwise ~ details").first
    table = numbers.locator("table.numbers").first
    assert not table.is_visible()
    numbers.locator("summary").click()
    assert table.is_visible() and "share_above" in table.inner_text()
    assert page.locator("#failing-raters li").first.inner_text().startswith("R006")
    screenshot(page, "closed")
