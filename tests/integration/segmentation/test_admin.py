"""Admin pages and the staff-only rendering endpoints, through Django's test client on a real database."""
from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import reverse

from evalcore.formats import pngcodec
from evalcore.pixels import rendering
from segmentation.models import Galaxy, Image, Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import classifications_replace, mask_store
from tests.admin_testdata import STAR, VOLUNTEERS, images_for, make_galaxy
from tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db

@pytest.fixture
def users(admin, viewer, stranger):
    return {"admin": admin, "viewer": viewer, "bare_staff": StaffFactory(username="carol"), "stranger": stranger}


@pytest.fixture
def data():
    return make_galaxy("NGC 4000", identifiers={"manga_id": "1-111111", "nsa_id": 123456,
                                                "iau_name": "J100000.00+020000.0",
                                                "sdss_objid": "1237648720693755918"})


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    return pngcodec.decode(response.content)


# --- permissions -------------------------------------------------------------------------------------------
def endpoint_urls(data):
    return [reverse("segmentation:image-png", args=[data.image.pk]),
            reverse("segmentation:mask-png", args=[data.masks[("spiral", "volunteers")].pk])]


def test_rendering_endpoints_send_anonymous_users_to_the_login(client, data):
    for url in endpoint_urls(data):
        response = client.get(url + "?stretch=log")
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login") + "?next=")
        assert "stretch%3Dlog" in response["Location"]


def test_rendering_endpoints_refuse_non_staff_and_staff_without_view_permission(client, users, data):
    for user in (users["stranger"], users["bare_staff"]):
        login(client, user)
        for url in endpoint_urls(data):
            assert client.get(url).status_code == 403, (user.username, url)
        client.logout()


def test_rendering_endpoints_serve_staff_with_view_permission_and_superusers(client, users, data):
    for user in (users["viewer"], users["admin"]):
        login(client, user)
        for url in endpoint_urls(data):
            png(client.get(url))
        client.logout()


def test_rendering_endpoints_only_answer_get(client, users, data):
    login(client, users["admin"])
    for url in endpoint_urls(data):
        assert client.post(url).status_code == 405


def admin_urls(data):
    mask = data.masks[("spiral", "volunteers")]
    urls = [reverse(f"admin:segmentation_{model}_changelist")
            for model in ("galaxy", "image", "mask", "producer", "importbatch", "volunteerclassification")]
    urls += [reverse("admin:segmentation_galaxy_change", args=[data.galaxy.pk]),
             reverse("admin:segmentation_image_change", args=[data.image.pk]),
             reverse("admin:segmentation_mask_change", args=[mask.pk]),
             reverse("admin:segmentation_producer_change", args=[mask.producer_id]),
             reverse("admin:segmentation_importbatch_change", args=[mask.import_batch_id])]
    return urls


def test_admin_pages_need_staff_and_show_to_staff(client, users, data):
    classifications_replace(galaxy=data.galaxy, image=data.image, structure="spiral",
                            rows=[{"classification_id": 77, "polygons": [[[1, 1], [5, 1], [5, 5]]]}])
    urls = admin_urls(data) + [reverse("admin:segmentation_volunteerclassification_change",
                                       args=[data.galaxy.classifications.get().pk])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    login(client, users["stranger"])
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    client.logout()
    login(client, users["bare_staff"])
    assert client.get(reverse("admin:segmentation_galaxy_change", args=[data.galaxy.pk])).status_code == 403
    client.logout()
    login(client, users["admin"])
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_nothing_can_be_added_changed_or_deleted_in_the_admin(client, users, data):
    login(client, users["admin"])
    mask = data.masks[("spiral", "volunteers")]
    for model in ("galaxy", "image", "mask", "producer", "importbatch", "volunteerclassification"):
        assert client.get(reverse(f"admin:segmentation_{model}_add")).status_code == 403, model
    response = client.post(reverse("admin:segmentation_mask_change", args=[mask.pk]),
                           {"state": "empty", "denominator": 3})
    assert response.status_code == 403
    assert client.post(reverse("admin:segmentation_mask_delete", args=[mask.pk]), {"post": "yes"}).status_code == 403
    assert client.post(reverse("admin:segmentation_galaxy_delete", args=[data.galaxy.pk]),
                       {"post": "yes"}).status_code == 403
    stored = Mask.objects.get(pk=mask.pk)
    assert (stored.state, stored.denominator, stored.content_hash) == ("marked", VOLUNTEERS, mask.content_hash)
    assert Galaxy.objects.filter(pk=data.galaxy.pk).exists()


# --- rendering endpoints ----------------------------------------------------------------------------------
def test_image_png_is_grey_at_image_size_and_follows_the_stretch(client, users, data):
    login(client, users["viewer"])
    url = reverse("segmentation:image-png", args=[data.image.pk])
    pixels = {}
    for kind in ("linear", "asinh", "log"):
        response = client.get(url, {"stretch": kind, "low": 0, "high": 100})
        pixels[kind] = png(response)
        assert pixels[kind].shape == (data.image.height, data.image.width), kind
        assert response["X-Render-Source"] == "band data: mean"
    assert pixels["log"].mean() > pixels["asinh"].mean() > pixels["linear"].mean()
    # the band data are stored the FITS way (south up); the rendering must put the star back north-east
    assert np.unravel_index(pixels["linear"].argmax(), pixels["linear"].shape) == STAR
    clipped = png(client.get(url, {"stretch": "linear", "low": 0, "high": 50}))
    assert clipped.mean() > pixels["linear"].mean() + 20


def test_image_png_bands_luminance_colour_and_size(client, users, data):
    login(client, users["viewer"])
    url = reverse("segmentation:image-png", args=[data.image.pk])
    g = png(client.get(url, {"band": "g", "stretch": "linear", "low": 0, "high": 100}))
    z = client.get(url, {"band": "z", "stretch": "linear", "low": 0, "high": 100})
    assert z["X-Render-Source"] == "band data: z"
    assert np.array_equal(png(z), g)  # z = 1.3 g: the same after a linear stretch over the full range
    lum = client.get(url, {"band": "luminance"})
    assert lum["X-Render-Source"] == "RGB luminance (asked for)"
    assert png(lum).shape == (data.image.height, data.image.width)
    colour = png(client.get(url, {"stretch": "colour"}))
    stored, _ = images_for(data.image.width)
    assert np.array_equal(colour, stored)
    small = png(client.get(url, {"stretch": "colour", "size": 16}))
    assert small.shape == (16, 16, 3)


@pytest.mark.parametrize("query, message", [
    ({"stretch": "sqrt"}, "stretch must be one of linear, asinh, log, colour"),
    ({"low": "abc"}, "low must be a number"),
    ({"low": "60", "high": "40"}, "0 <= low < high <= 100"),
    ({"high": "nan"}, "high must be finite"),
    ({"size": "0"}, "size must be a whole number"),
    ({"band": "i"}, "unknown band 'i'"),
])
def test_image_png_explains_bad_parameters(client, users, data, query, message):
    login(client, users["viewer"])
    response = client.get(reverse("segmentation:image-png", args=[data.image.pk]), query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_image_without_band_data_or_with_unusable_band_data_falls_back_to_luminance(client, users):
    plain = make_galaxy("UGC 1", with_raw=False, size=24)
    login(client, users["viewer"])
    response = client.get(reverse("segmentation:image-png", args=[plain.image.pk]))
    assert response["X-Render-Source"] == "RGB luminance (no band data stored)"
    assert png(response).shape == (24, 24)
    # band data of the wrong size: shown from the RGB, with the reason
    _, wrong = images_for(10)
    plain.image.raw.save("wrong.fits", ContentFile(wrong))
    response = client.get(reverse("segmentation:image-png", args=[plain.image.pk]))
    assert "band data unusable: raw band data are 10x10 px but the image is 24x24 px" in response["X-Render-Source"]
    assert png(response).shape == (24, 24)


def test_mask_png_is_an_rgba_overlay_of_the_fractions(client, users, data):
    login(client, users["viewer"])
    mask = data.masks[("spiral", "volunteers")]
    fractions = mask.fractions()
    for cmap in rendering.COLORMAPS:
        rgba = png(client.get(reverse("segmentation:mask-png", args=[mask.pk]), {"cmap": cmap}))
        assert rgba.shape == (mask.height, mask.width, 4)
        assert np.array_equal(rgba[..., 3] > 0, fractions > 0)
        row, col = np.unravel_index(fractions.argmax(), fractions.shape)
        assert tuple(rgba[row, col, :3]) == tuple(rendering.colormap_lut(cmap)[255])
    small = png(client.get(reverse("segmentation:mask-png", args=[mask.pk]), {"size": 12}))
    assert small.shape == (12, 12, 4)
    empty = png(client.get(reverse("segmentation:mask-png", args=[data.masks[("bar", "model")].pk])))
    assert empty.shape == (mask.height, mask.width, 4) and empty[..., 3].max() == 0


def test_mask_png_refuses_not_asked_masks_and_bad_colormaps(client, users, data):
    login(client, users["viewer"])
    not_asked = data.masks[("bar", "volunteers")]
    response = client.get(reverse("segmentation:mask-png", args=[not_asked.pk]))
    assert response.status_code == 404
    assert "was not asked: it has no pixels" in response.content.decode()
    response = client.get(reverse("segmentation:mask-png", args=[data.masks[("spiral", "model")].pk]),
                          {"cmap": "jet"})
    assert response.status_code == 400 and "cmap must be one of viridis, cividis, magma" in response.content.decode()
    assert client.get(reverse("segmentation:mask-png", args=[999999])).status_code == 404


# --- galaxy list --------------------------------------------------------------------------------------------
@pytest.fixture
def survey(data):
    synthetic = make_galaxy("SYN 0001", synthetic=True, identifiers={"manga_id": "9-000001"}, size=24)
    bare, _ = galaxy_upsert(name="UGC 7", match={"manga_id": "1-777777"})
    return {"real": data, "synthetic": synthetic, "bare": bare}


def listed(client, **query) -> list[str]:
    response = client.get(reverse("admin:segmentation_galaxy_changelist"), query)
    assert response.status_code == 200
    return sorted(g.name for g in response.context["cl"].result_list)


def test_galaxy_list_searches_every_identifier(client, users, survey):
    login(client, users["admin"])
    for term in ("NGC 4000", "ngc", "1-111111", "J100000.00", "123456", "1237648720693755918"):
        assert listed(client, q=term) == ["NGC 4000"], term
    assert listed(client, q="9-0000") == ["SYN 0001"]
    assert listed(client, q="12345") == []  # NSA ids match exactly, not by part
    assert listed(client, q="no-such-galaxy") == []


@pytest.mark.parametrize("query, expected", [
    ({"origin": "synthetic"}, ["SYN 0001"]),
    ({"origin": "real"}, ["NGC 4000", "UGC 7"]),
    ({"spiral": "marked"}, ["NGC 4000", "SYN 0001"]),
    ({"spiral": "marked:truth"}, ["SYN 0001"]),
    ({"spiral": "marked:sparcfire"}, ["NGC 4000", "SYN 0001"]),
    ({"bar": "marked"}, ["SYN 0001"]),
    ({"bar": "marked:volunteers"}, []),
    ({"bar": "not_asked"}, ["NGC 4000", "SYN 0001"]),
    ({"bar": "empty"}, ["NGC 4000", "SYN 0001"]),
    ({"bar": "none"}, ["NGC 4000", "UGC 7"]),
    ({"bar": "none", "origin": "real", "spiral": "marked:model"}, ["NGC 4000"]),
])
def test_galaxy_list_filters_by_labels_and_origin(client, users, survey, query, expected):
    login(client, users["admin"])
    assert listed(client, **query) == expected


def test_label_filter_ignores_superseded_masks_and_shows_counts(client, users, survey):
    login(client, users["admin"])
    real = survey["real"]
    vol = real.masks[("spiral", "volunteers")].producer
    mask_store(galaxy=real.galaxy, image=real.image, structure="bar", producer=vol, state="marked",
               numerators=np.eye(real.image.height, dtype=np.int64), denominator=VOLUNTEERS)
    assert listed(client, bar="marked:volunteers") == ["NGC 4000"]
    mask_store(galaxy=real.galaxy, image=real.image, structure="bar", producer=vol, state="not_asked")
    assert listed(client, bar="marked:volunteers") == []
    response = client.get(reverse("admin:segmentation_galaxy_changelist"), {"_facets": "True"})
    assert response.status_code == 200
    assert client.get(reverse("admin:segmentation_galaxy_changelist"), {"spiral": "bogus"}).status_code == 302


def test_galaxy_list_marks_synthetic_and_counts_current_masks(client, users, survey):
    login(client, users["admin"])
    html = client.get(reverse("admin:segmentation_galaxy_changelist")).content.decode()
    assert html.count('class="sg-badge sg-synthetic"') == 1
    rows = {row.split("</th>")[0].rsplit(">", 2)[-2].split("<")[0]: row for row in html.split('<tr')[2:]}
    assert '<td class="field-mask_count">5</td>' in rows["NGC 4000"]
    assert '<td class="field-mask_count">7</td>' in rows["SYN 0001"]
    assert '<td class="field-mask_count">0</td>' in rows["UGC 7"]


# --- galaxy page --------------------------------------------------------------------------------------------
def galaxy_page(client, galaxy, **query):
    response = client.get(reverse("admin:segmentation_galaxy_change", args=[galaxy.pk]), query)
    assert response.status_code == 200
    return response


def test_galaxy_page_shows_overlay_controls_and_provenance(client, users, data):
    login(client, users["viewer"])
    response = galaxy_page(client, data.galaxy)
    viewer = response.context["viewer"]
    html = response.content.decode()
    vol_spiral = data.masks[("spiral", "volunteers")]
    assert viewer["selected"].mask == vol_spiral
    assert f'src="/segmentation/mask/{vol_spiral.pk}.png?cmap=viridis"' in html
    assert f"/segmentation/image/{data.image.pk}.png?v=" in viewer["initial_image_url"]
    assert viewer["initial_bands"] == ["g", "r", "z"]
    for option in ('value="linear"', 'value="asinh"', 'value="log"', 'value="colour"', 'value="cividis"',
                   'id="gv-opacity"', 'value="z"', "galaxy_viewer.js"):
        assert option in html, option
    assert "Not asked" in html and "Asked, nothing marked" in html
    # provenance of every current mask
    for mask in data.masks.values():
        assert f'id="provenance-{mask.pk}"' in html
        assert mask.content_hash[:10] in html
    assert f'href="/admin/segmentation/mask/{data.history[0].pk}/change/">mask {data.history[0].pk}</a>' in html
    assert "1 earlier version" in html
    assert "&quot;input_px&quot;: 224" in html and "abc123" in html  # model parameters and code version
    assert f"15 · peak 15/{VOLUNTEERS}" in html
    assert "GZ3D files #" in html  # import batch
    assert "sg-banner-synthetic" not in html
    config = response.context["viewer"]["config"]
    assert str(data.masks[("bar", "volunteers")].pk) not in config["masks"]  # not asked: not an overlay


def test_galaxy_page_preselects_a_mask_and_marks_synthetic_galaxies(client, users):
    data = make_galaxy("SYN 0002", synthetic=True, size=24)
    login(client, users["viewer"])
    truth_bar = data.masks[("bar", "truth")]
    response = galaxy_page(client, data.galaxy, mask=truth_bar.pk)
    assert response.context["viewer"]["selected"].mask == truth_bar
    html = response.content.decode()
    assert "sg-banner-synthetic" in html and "not observed" in html
    # a not-asked mask cannot be preselected: the first marked one is shown instead
    response = galaxy_page(client, data.galaxy, mask=data.masks[("bar", "volunteers")].pk)
    assert response.context["viewer"]["selected"].mask == data.masks[("spiral", "volunteers")]


def test_galaxy_page_without_images_or_masks_says_so(client, users):
    galaxy, _ = galaxy_upsert(name="Lonely")
    login(client, users["viewer"])
    html = galaxy_page(client, galaxy).content.decode()
    assert "has no image yet" in html and "No masks yet" in html


def test_galaxy_page_with_two_images_offers_both(client, users, data):
    rgb = np.full((20, 30, 3), 90, np.uint8)
    subject, _ = image_store(galaxy=data.galaxy, kind="gz3d_subject", rgb=rgb)
    vol = data.masks[("spiral", "volunteers")].producer
    on_subject = mask_store(galaxy=data.galaxy, image=subject, structure="spiral", producer=vol,
                            state="marked", numerators=np.ones((20, 30), np.int64), denominator=2).mask
    login(client, users["viewer"])
    response = galaxy_page(client, data.galaxy, mask=on_subject.pk)
    viewer = response.context["viewer"]
    assert viewer["initial_image"] == subject
    assert viewer["initial_bands"] == []
    assert viewer["config"]["masks"][str(on_subject.pk)]["image"] == str(subject.pk)
    assert 'id="gv-image-select"' in response.content.decode()
    assert png(client.get(reverse("segmentation:image-png", args=[subject.pk]))).shape == (20, 30)


def test_import_batch_summary_is_readable(client, users, data):
    login(client, users["viewer"])
    users["viewer"].user_permissions.add(Permission.objects.get(codename="view_importbatch"))
    batch = data.masks[("spiral", "volunteers")].import_batch
    html = client.get(reverse("admin:segmentation_importbatch_change", args=[batch.pk])).content.decode()
    assert "Failures (1)" in html and "<code>bad.fits</code>: truncated gzip" in html
    assert "<th>dropped polygons</th><td>2</td>" in html
    listing = client.get(reverse("admin:segmentation_importbatch_changelist")).content.decode()
    assert "imported 1 · updated 0 · unchanged 0 · skipped 0 · failed 1" in listing


def test_image_and_mask_pages_preview_with_the_rendering_endpoints(client, users, data):
    login(client, users["admin"])
    mask = data.masks[("spiral", "model")]
    html = client.get(reverse("admin:segmentation_mask_change", args=[mask.pk])).content.decode()
    assert f"/segmentation/mask/{mask.pk}.png?size=256" in html
    assert f"/admin/segmentation/galaxy/{data.galaxy.pk}/change/?mask={mask.pk}" in html
    assert f'<a href="/segmentation/mask/{mask.pk}.png">{mask.data.name}</a>' in html
    html_image = client.get(reverse("admin:segmentation_image_change", args=[data.image.pk])).content.decode()
    assert f"/segmentation/image/{data.image.pk}.png?stretch=colour&amp;size=256" in html_image
    assert f'<a href="/segmentation/image/{data.image.pk}.png">{data.image.file.name}</a>' in html_image
    # stored files appear by name and through the site's views, never as storage (MEDIA_URL) links
    for page in (html, html_image):
        assert 'href="/media/' not in page and "/media/" + mask.data.name not in page
    assert Image.objects.count() == 1


def test_stored_png_round_trips_through_the_endpoint(client, users, data):
    """The colour rendering returns exactly the stored pixels (no re-encoding loss)."""
    login(client, users["viewer"])
    with data.image.file.open("rb") as fh:
        stored = pngcodec.decode(fh.read())
    served = png(client.get(reverse("segmentation:image-png", args=[data.image.pk]), {"stretch": "colour"}))
    assert np.array_equal(served, stored[..., :3])
