"""A staff user starts model generation from the admin on images unlike the model's training data, and the
run's page warns what differs (real Chromium, real model version, real Redis queue)."""
from __future__ import annotations

import pytest

from segmentation.services.galaxies import galaxy_upsert, image_store
from tests.factories.models import make_version, picture

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_generation_run_page_warns_about_images_unlike_the_training_data(staff_page, redis_conn, screenshot):
    training = []
    for i in range(3):
        g, _ = galaxy_upsert(name=f"train{i}", defaults={"ra": 10.0 + i, "dec": 1.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=picture(48, 48, i), pixel_scale=0.262,
                            bands="grz asinh (Legacy Survey)")
        training.append(im)
    g, _ = galaxy_upsert(name="SDSS J1", defaults={"ra": 40.0, "dec": 2.0})
    image_store(galaxy=g, kind="survey_cutout", rgb=picture(40, 64, 9), pixel_scale=0.396,
                bands="r asinh (0.5-99.5 %)")
    version = make_version("grz model", 4.0, training)

    page, url = staff_page, staff_page.live_server_url
    page.goto(f"{url}/admin/segmentation/generationrun/add/")
    page.select_option("#id_source", "model")
    page.select_option("#id_model_version", label=str(version))
    page.fill("#id_names", "SDSS J1\ntrain0")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/segmentation/generationrun/*/change/")
    box = page.locator("#input-checks")
    assert "1 of 2 images differ from what grz model learned from" in box.inner_text()
    rows = box.locator("tbody tr")
    assert rows.count() == 1
    text = rows.first.inner_text()
    assert "SDSS J1" in text and "bands r (one band, shown grey)" in text and '0.396"/px' in text
    assert "aspect ratio 1.60 (64x40 px)" in text and "padded to a square" in text
    screenshot(page, "input-checks")
