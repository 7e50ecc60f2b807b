"""A staff user launches a measurement run from the admin by clicking, and watches its live status reach the
end while a real RQ worker measures the masks (real Chromium, real Redis queue, real masks)."""
from __future__ import annotations

import pytest
from rq.worker import SimpleWorker

from evalsite import queues
from segmentation.models import MaskMeasurement, MeasurementRun
from tests.factories.measurements import BAR_COLS as COLS
from tests.factories.measurements import BAR_ROWS as ROWS
from tests.factories.measurements import galaxy_with_image, producer, store_bar, store_spiral

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_launch_a_measurement_run_by_clicking_and_watch_it_finish(staff_page, redis_conn, screenshot):
    model, crowd = producer("model"), producer("volunteers")
    for i in range(3):
        g, im = galaxy_with_image(f"CLICK{i}", axis_ratio=0.8, position_angle=10.0, ra=150.0 + i)
        store_bar(g, im, model, ROWS, COLS)
        store_spiral(g, im, model, i=i)
        store_bar(g, im, crowd, ROWS, COLS)  # not selected below

    page, url = staff_page, staff_page.live_server_url
    page.goto(f"{url}/admin/")
    page.click("a:text-is('Measurement runs')")
    page.click(".object-tools a.addlink")  # the changelist's own button, not the sidebar's
    page.wait_for_url("**/admin/segmentation/measurementrun/add/")
    page.select_option("#id_source", "model")
    page.fill("#id_chunk_size", "2")
    screenshot(page, "form")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/segmentation/measurementrun/*/change/")

    run = MeasurementRun.objects.get()
    assert run.total == 6 and run.chunks.count() == 3 and run.requested_by == "alice"
    status = page.locator("#run-status")
    assert status.get_attribute("data-status") == "queued"
    assert "0 of 6 masks" in status.inner_text()
    assert "model masks" in page.locator("#content").inner_text()

    queue = queues.get_queue(queues.GENERATION)
    assert queue.count == 3
    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    # the page polls its status block: it reaches the end without a reload
    page.wait_for_selector("#run-status[data-status=succeeded]", timeout=20_000)
    text = page.locator("#run-status").inner_text()
    assert "6 of 6 masks" in text and "6 new" in text and "100%" in text
    assert MaskMeasurement.objects.filter(mask__producer=model).count() == 6
    assert not MaskMeasurement.objects.filter(mask__producer=crowd).exists()
    screenshot(page, "finished")
