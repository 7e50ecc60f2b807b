"""The admin in a real browser: galaxy list search and filters, and the galaxy viewer's controls.

Changes are checked on what the browser actually draws (screenshots of the viewer decoded to pixels)
and on the PNG requests it makes, not merely on elements existing.
"""
from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage

from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store
from tests.admin_testdata import make_galaxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def survey(transactional_db):
    real = make_galaxy("NGC 4000", identifiers={"manga_id": "1-111111", "nsa_id": 123456,
                                                "iau_name": "J100000.00+020000.0",
                                                "sdss_objid": "1237648720693755918"})
    synthetic = make_galaxy("SYN 0001", synthetic=True, identifiers={"manga_id": "9-000001"})
    bare, _ = galaxy_upsert(name="UGC 7", match={"manga_id": "1-777777"})
    return {"real": real, "synthetic": synthetic, "bare": bare}


def result_names(page) -> list[str]:
    return page.locator("#result_list tbody th a").all_inner_texts()


def test_galaxy_list_search_by_identifiers_and_filters(staff_page, survey, screenshot):
    page, url = staff_page, staff_page.live_server_url
    page.goto(f"{url}/admin/segmentation/galaxy/")
    assert sorted(result_names(page)) == ["NGC 4000", "SYN 0001", "UGC 7"]
    assert page.locator("#result_list .sg-synthetic").count() == 1
    screenshot(page, "list")

    for term in ("123456", "J100000", "1237648720693755918", "1-1111", "ngc 4000"):
        page.fill("#searchbar", term)
        page.press("#searchbar", "Enter")
        page.wait_for_load_state()
        assert result_names(page) == ["NGC 4000"], term

    page.goto(f"{url}/admin/segmentation/galaxy/")
    page.locator('#changelist-filter details[data-filter-title="bar labelled"] a',
                 has_text="Marked (any producer)").click()
    page.wait_for_url("**bar=marked**")
    assert result_names(page) == ["SYN 0001"]
    page.locator('#changelist-filter details[data-filter-title="origin"] a', has_text="Real").click()
    page.wait_for_url("**origin=real**")
    assert result_names(page) == []
    assert "bar=marked" in page.url

    page.goto(f"{url}/admin/segmentation/galaxy/?origin=real")
    assert sorted(result_names(page)) == ["NGC 4000", "UGC 7"]
    page.locator('#changelist-filter details[data-filter-title="spiral arms labelled"] a',
                 has_text="Marked by volunteers").click()
    page.wait_for_url("**spiral=marked%3Avolunteers**")
    assert result_names(page) == ["NGC 4000"]
    screenshot(page, "filtered")


def stage_pixels(page) -> np.ndarray:
    png = page.locator("#gv-stage").screenshot()
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def wait_drawn(page):
    page.wait_for_function("""() => ['gv-image', 'gv-overlay'].every(id => {
        const el = document.getElementById(id);
        return el.hidden || (el.complete && el.naturalWidth > 0);
    })""")


def colourfulness(pixels: np.ndarray) -> float:
    """Mean spread between the RGB channels: 0 for a grey picture (the stretched image alone)."""
    return float((pixels.max(axis=2) - pixels.min(axis=2)).mean())


def test_galaxy_page_overlay_follows_mask_colormap_opacity_and_stretch(staff_page, survey, screenshot):
    page, url = staff_page, staff_page.live_server_url
    data = survey["real"]
    pngs = []
    page.on("response", lambda r: pngs.append(r) if urlsplit(r.url).path.startswith("/segmentation/") else None)
    page.goto(f"{url}/admin/segmentation/galaxy/{data.galaxy.pk}/change/")
    wait_drawn(page)
    screenshot(page, "galaxy-page")

    vol_spiral = data.masks[("spiral", "volunteers")]
    assert f"/segmentation/mask/{vol_spiral.pk}.png" in page.get_attribute("#gv-overlay", "src")
    assert [(r.status, r.headers["content-type"]) for r in pngs] == [(200, "image/png")] * 2, [r.url for r in pngs]
    # the states are told apart, and a not-asked mask cannot be chosen as an overlay
    bar_not_asked = data.masks[("bar", "volunteers")]
    assert page.is_disabled(f'input[name=mask][value="{bar_not_asked.pk}"]')
    coverage = page.inner_text(".sg-coverage")
    assert "Not asked" in coverage and "Asked, nothing marked" in coverage

    with_volunteers = stage_pixels(page)
    assert colourfulness(with_volunteers) > 2.0  # a coloured overlay on a grey image

    # another mask: a new overlay is requested and the drawing changes
    model_spiral = data.masks[("spiral", "model")]
    with page.expect_response(f"**/segmentation/mask/{model_spiral.pk}.png?cmap=viridis") as resp:
        page.check(f'input[name=mask][value="{model_spiral.pk}"]')
    assert resp.value.status == 200
    wait_drawn(page)
    with_model = stage_pixels(page)
    assert np.abs(with_model - with_volunteers).mean() > 1.0
    assert "unet-resnet18" in page.inner_text("#gv-caption-mask")

    # another colormap
    with page.expect_response(f"**/segmentation/mask/{model_spiral.pk}.png?cmap=magma"):
        page.select_option("#gv-cmap", "magma")
    wait_drawn(page)
    with_magma = stage_pixels(page)
    assert np.abs(with_magma - with_model).mean() > 1.0

    # opacity is client-side: no request, the overlay fades towards the grey image
    before = len(pngs)
    page.eval_on_selector("#gv-opacity", "el => { el.value = 10; el.dispatchEvent(new Event('input')); }")
    assert page.eval_on_selector("#gv-overlay", "el => getComputedStyle(el).opacity") == "0.1"
    faint = stage_pixels(page)
    assert colourfulness(faint) < colourfulness(with_magma) / 2
    page.eval_on_selector("#gv-opacity", "el => { el.value = 100; el.dispatchEvent(new Event('input')); }")
    assert colourfulness(stage_pixels(page)) > colourfulness(with_magma)
    assert len(pngs) == before

    # stretch on the image alone: log lifts the faint disc above linear
    page.check('input[name=mask][value=""]')
    assert page.is_hidden("#gv-overlay")
    with page.expect_response("**/segmentation/image/*stretch=linear*") as resp:
        page.select_option("#gv-stretch", "linear")
    assert resp.value.status == 200 and resp.value.headers["x-render-source"] == "band data: mean"
    wait_drawn(page)
    linear = stage_pixels(page)
    assert colourfulness(linear) < 1.0  # grey: the image alone
    with page.expect_response("**/segmentation/image/*stretch=log*"):
        page.select_option("#gv-stretch", "log")
    wait_drawn(page)
    log = stage_pixels(page)
    assert log.mean() > linear.mean() + 10

    # one band instead of the mean, then the stored colour picture
    with page.expect_response("**/segmentation/image/*band=z*") as resp:
        page.select_option("#gv-band", "z")
    assert resp.value.headers["x-render-source"] == "band data: z"
    with page.expect_response("**/segmentation/image/*stretch=colour*"):
        page.select_option("#gv-stretch", "colour")
    wait_drawn(page)
    assert colourfulness(stage_pixels(page)) > 2.0  # the RGB picture is coloured
    assert page.is_disabled("#gv-band")
    assert all(r.status == 200 for r in pngs)
    screenshot(page, "controls-changed")


def test_bad_clip_is_explained_not_requested(staff_page, survey):
    page, url = staff_page, staff_page.live_server_url
    page.goto(f"{url}/admin/segmentation/galaxy/{survey['real'].galaxy.pk}/change/")
    wait_drawn(page)
    with page.expect_response("**/segmentation/image/*high=20*"):
        page.fill("#gv-high", "20")
        page.press("#gv-high", "Tab")
    assert page.inner_text("#gv-error") == ""
    src = page.get_attribute("#gv-image", "src")
    page.fill("#gv-low", "50")
    page.press("#gv-low", "Tab")
    assert "low < high" in page.inner_text("#gv-error")
    assert page.get_attribute("#gv-image", "src") == src


def test_synthetic_galaxy_is_marked_and_truth_masks_are_shown(staff_page, survey, screenshot):
    page, url = staff_page, staff_page.live_server_url
    data = survey["synthetic"]
    truth_bar = data.masks[("bar", "truth")]
    page.goto(f"{url}/admin/segmentation/galaxy/{data.galaxy.pk}/change/?mask={truth_bar.pk}")
    wait_drawn(page)
    assert "synthetic survey, not observed" in page.inner_text(".sg-banner-synthetic")
    assert page.is_checked(f'input[name=mask][value="{truth_bar.pk}"]')
    assert f"/segmentation/mask/{truth_bar.pk}.png" in page.get_attribute("#gv-overlay", "src")
    screenshot(page, "synthetic")


def test_switching_picture_lists_its_masks_and_keeps_the_same_label(staff_page, survey, screenshot):
    page, url = staff_page, staff_page.live_server_url
    data = survey["real"]
    rgb = np.full((32, 32, 3), 40, np.uint8)
    rgb[8:24, 8:24] = 200
    subject, _ = image_store(galaxy=data.galaxy, kind="gz3d_subject", rgb=rgb)
    vol = data.masks[("spiral", "volunteers")].producer
    ring = np.zeros((32, 32), np.int64)
    ring[4:28, 4:28] = 6
    ring[10:22, 10:22] = 0
    on_subject = mask_store(galaxy=data.galaxy, image=subject, structure="spiral", producer=vol,
                            state="marked", numerators=ring, denominator=15).mask
    vol_cutout = data.masks[("spiral", "volunteers")]
    page.goto(f"{url}/admin/segmentation/galaxy/{data.galaxy.pk}/change/?mask={vol_cutout.pk}")
    wait_drawn(page)
    assert page.is_checked(f'input[name=mask][value="{vol_cutout.pk}"]')
    assert page.is_hidden(f'input[name=mask][value="{on_subject.pk}"]')
    before = stage_pixels(page)

    with page.expect_response(f"**/segmentation/mask/{on_subject.pk}.png?cmap=viridis"):
        with page.expect_response(f"**/segmentation/image/{subject.pk}.png*band=luminance*") as image_resp:
            page.select_option("#gv-image-select", str(subject.pk))
    assert image_resp.value.headers["x-render-source"] == "RGB luminance (asked for)"
    wait_drawn(page)
    assert page.is_checked(f'input[name=mask][value="{on_subject.pk}"]')
    assert page.is_visible(f'input[name=mask][value="{on_subject.pk}"]')
    assert page.is_hidden(f'input[name=mask][value="{vol_cutout.pk}"]')
    assert page.eval_on_selector("#gv-band", "el => [...el.options].map(o => o.value)") == ["luminance"]
    assert np.abs(stage_pixels(page) - before).mean() > 5
    screenshot(page, "subject-image")

    # a mask with no twin on the new picture: going back to the cutout keeps the slot, the model's does not
    model_spiral = data.masks[("spiral", "model")]
    page.select_option("#gv-image-select", str(data.image.pk))
    assert page.is_checked(f'input[name=mask][value="{vol_cutout.pk}"]')
    page.check(f'input[name=mask][value="{model_spiral.pk}"]')
    page.select_option("#gv-image-select", str(subject.pk))
    assert page.is_checked('input[name=mask][value=""]') and page.is_hidden("#gv-overlay")
