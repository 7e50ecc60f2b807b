"""A staff user tries to activate a model version that failed the quality gate, from the version list, and
reads why on the message and on the version's page (real Chromium, real evaluation of a real model file)."""
from __future__ import annotations

import hashlib

import pytest
import torch
from django.core.files.base import ContentFile

from evalcore.unet.augment import settings as augmentation_settings
from evalcore.unet.manifest import manifest_bytes
from evalcore.unet.model import UNetConfig, build_model, model_bytes
from segmentation.models import ModelVersion
from segmentation.services import quality_gate, training
from segmentation.services.masks import producer_get_or_create
from tests.factories.quality import quality_survey, store_arc_finder

pytestmark = pytest.mark.django_db(transaction=True)


def blind_version(name: str) -> ModelVersion:
    """A network that answers 0.018 everywhere (finds nothing), with the survey's real manifest and splits."""
    config = UNetConfig(image_size=32)
    model = build_model(config)
    with torch.no_grad():
        model.net.segmentation_head[0].weight.zero_()
        model.net.segmentation_head[0].bias.fill_(-4.0)
    blob = model_bytes(model, config)
    digest = hashlib.sha256(blob).hexdigest()
    producer = producer_get_or_create(kind="model", name=name, version=digest[:12])
    items = training.labelled_galaxies(selection={"synthetic": True})
    version = ModelVersion(name=name, producer=producer, config=config.to_dict(), weights_sha256=digest)
    version.weights.save(f"{name}.pt", ContentFile(blob), save=False)
    version.manifest.save(f"{name}.json", ContentFile(manifest_bytes(training.manifest_entries(items),
                                                                     augmentation=augmentation_settings(config))),
                          save=False)
    version.save()
    return version


@pytest.fixture
def survey(db):
    return quality_survey()



def test_activating_a_version_below_the_floor_is_refused_with_the_reason(staff_page, survey, screenshot):
    store_arc_finder("perfect")
    version = blind_version("blind")
    verdict = quality_gate.evaluate_and_gate(version=version, n_boot=100)
    assert verdict["status"] == "failed"

    page, url = staff_page, staff_page.live_server_url
    page.goto(f"{url}/admin/segmentation/modelversion/")
    row = page.locator("#result_list tbody tr", has_text="blind")
    assert row.locator(".sg-gate").inner_text() == "failed"
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    message = page.locator(".messagelist").inner_text()
    assert "Not activated" in message and "spiral IoU vs truth 0.000 is below the floor 0.30" in message
    assert "not above the arc finder's 1.000" in message
    version.refresh_from_db()
    assert not version.is_active
    screenshot(page, "gate-refused")

    page.click("#result_list a:text('blind')")
    summary = page.locator(".sg-gate-summary").inner_text()
    assert summary.startswith("failed the quality gate: spiral IoU vs truth 0.000")
    checks = page.locator(".sg-gate-checks").inner_text()
    assert "spiral IoU vs truth above the arc finder's" in checks and "FAIL" in checks
    screenshot(page, "gate-version-page")
