"""Media on S3-compatible storage: raters still never see a storage URL, and staff pages still work.

A real S3-compatible HTTP server (moto's ``ThreadedMotoServer``) runs in a thread on a free loopback port;
boto3 and django-storages talk HTTP to it exactly as they would to AWS or MinIO. The storage settings are
the production block of ``evalsite/settings.py`` itself (run with ``EVALSITE_MEDIA_STORAGE=s3``), signed
query-string URLs included, so a template or view that used a file's ``.url`` would put one in front of a
rater and fail here. Credentials are dummies and proxies are switched off: nothing leaves 127.0.0.1.

The rating flow answers HTML and PNG only (no JSON); every body it sends, whatever its type, is checked.
"""
from __future__ import annotations

import io
import logging
import runpy
import socket

import boto3
import numpy as np
import pytest
import requests
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from moto.server import ThreadedMotoServer
from PIL import Image as PILImage
from storages.backends.s3 import S3Storage

from evalcore.formats import pngcodec
from ratings.models import Assignment, PanelImage
from ratings.services.studies import study_render_panels
from segmentation.models import Image, Mask
from tests.admin_testdata import make_galaxy
from tests.factories.studies import spiral_study
from tests.walks import Crawler, walk_raters

BUCKET = "evalsite-s3-blinding-test-bucket"
REGION = "eu-west-1"
ACCESS_KEY = "AKIAEVALSITETEST0001"
SECRET_KEY = "evalsite-test-secret-key-not-a-real-one"
N_RATERS = 2


class S3Media:
    """The test server's endpoint and a boto3 client of it, to look into the bucket behind the site's back."""

    def __init__(self, endpoint: str, client):
        self.endpoint = endpoint
        self.client = client

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def offline_aws(monkeypatch, tmp_path):
    """Dummy credentials, no AWS config files, no instance metadata, no proxies: loopback only."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy-environment-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy-environment-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def production_storage(monkeypatch, settings, endpoint: str) -> dict:
    """``STORAGES["default"]`` exactly as evalsite/settings.py builds it for EVALSITE_MEDIA_STORAGE=s3."""
    for name, value in {"EVALSITE_MEDIA_STORAGE": "s3", "EVALSITE_S3_BUCKET": BUCKET,
                        "EVALSITE_S3_ENDPOINT_URL": endpoint, "EVALSITE_S3_ACCESS_KEY": ACCESS_KEY,
                        "EVALSITE_S3_SECRET_KEY": SECRET_KEY, "EVALSITE_S3_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(settings.BASE_DIR / "evalsite" / "settings.py"))["STORAGES"]["default"]


@pytest.fixture
def s3_media(db, settings, monkeypatch, tmp_path, caplog):
    """Default storage on a private S3 server at 127.0.0.1:<free port>, with an empty bucket."""
    offline_aws(monkeypatch, tmp_path)
    caplog.set_level(logging.WARNING, logger="werkzeug")  # not one line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks one
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        storage = production_storage(monkeypatch, settings, endpoint)
        assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
        assert storage["OPTIONS"]["querystring_auth"] is True  # a leaked .url would carry a signature
        settings.STORAGES = {**settings.STORAGES, "default": storage}
        assert isinstance(default_storage, S3Storage)
        yield S3Media(endpoint, client)
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto keeps buckets in process memory
        server.stop()
    with pytest.raises(OSError):  # the server is really gone
        socket.create_connection((host, port), timeout=2).close()


def leak_markers(s3: S3Media) -> list[str]:
    """Everything that would show a rater where or how the media are stored."""
    host_port = s3.endpoint.removeprefix("http://")
    markers = [host_port, f"localhost:{host_port.rsplit(':', 1)[1]}", BUCKET, ACCESS_KEY, SECRET_KEY,
               "x-amz-", "awsaccesskeyid", "amazonaws", "signature=", "/media/", "masks/", "panels/"]
    markers += sorted(s3.keys())
    return [m.lower() for m in markers]


class StorageCrawler(Crawler):
    """The blinding crawl's rater, also keeping every response as it came (status, type, body)."""

    def __init__(self, client: Client):
        super().__init__(client)
        self.responses: list[tuple[str, int, str, bytes]] = []

    def _record(self, url: str, response):
        super()._record(url, response)
        self.responses.append((url, response.status_code, response.get("Content-Type", ""), response.content))


def test_files_land_in_the_bucket_and_nothing_on_disk(s3_media, tmp_path):
    study = spiral_study(n_galaxies=2, planned_raters=1, raters_per_item=1)
    study_render_panels(study=study)
    stored = ({im.file.name for im in Image.objects.all()}
              | {m.data.name for m in Mask.objects.exclude(data="")}
              | {p.file.name for p in PanelImage.objects.filter(candidate__item__study=study)})
    assert PanelImage.objects.filter(candidate__item__study=study).count() >= 2 * (3 * 2 + 4)
    assert s3_media.keys() == stored
    assert {key.split("/", 1)[0] for key in stored} == {"images", "masks", "panels"}
    panel = PanelImage.objects.filter(candidate__item__study=study).first()
    with panel.file.open("rb") as fh:
        assert fh.read() == s3_media.body(panel.file.name)
    assert not (tmp_path / "media").exists()  # MEDIA_ROOT is unused with S3
    # what a leak would look like: the storage's own URL is signed and names the endpoint, bucket and key
    # (SigV2 "AWSAccessKeyId=...&Signature=" or SigV4 "X-Amz-...Signature=", both among the leak markers)
    url = default_storage.url(panel.file.name).lower()
    assert url.startswith(f"{s3_media.endpoint}/{BUCKET}/{panel.file.name}?")
    assert "signature=" in url and ("awsaccesskeyid" in url or "x-amz-" in url)


def test_raters_never_see_the_storage(s3_media):
    study = spiral_study(n_galaxies=3, planned_raters=N_RATERS, raters_per_item=N_RATERS, practice_items=1)
    study_render_panels(study=study)  # as the job queued on opening does: every panel into the bucket
    rendered = s3_media.keys()
    assert any(key.startswith("panels/") for key in rendered)
    markers = leak_markers(s3_media)
    crawlers = walk_raters(study, N_RATERS, StorageCrawler, prefix="s3rater")
    assert s3_media.keys() == rendered  # every picture was read back from the bucket, none rendered anew

    stored_panels = {s3_media.body(key) for key in rendered if key.startswith("panels/")}
    for crawler in crawlers:
        assert len(crawler.pages) >= 10 and len(crawler.pictures) >= 30
        for url in crawler.urls:
            assert not any(m in url.lower() for m in markers), url
        for headers in crawler.headers:
            text = " ".join(f"{k}: {v}" for k, v in headers.items()).lower()
            assert not any(m in text for m in markers), text
        for url, status, content_type, body in crawler.responses:
            leaked = [m for m in markers if m.encode() in body.lower()]
            assert not leaked, (url, content_type, leaked)
            if url.endswith(".png"):  # served by the site itself, never a redirect to storage
                assert (status, content_type) == (200, "image/png"), (url, status, content_type)
                with PILImage.open(io.BytesIO(body)) as img:
                    img.verify()
            else:
                assert content_type.startswith("text/html") or status == 302, (url, status, content_type)
        item_pictures = {url: data for url, data in crawler.pictures.items() if url.startswith("/rate/a/")}
        assert len(item_pictures) == 3 * (3 * 2 + 4)
        assert set(item_pictures.values()) <= stored_panels  # the bucket's bytes, as stored
    assert Assignment.objects.filter(study=study, submitted_at__isnull=False).count() == 3 * N_RATERS


def test_staff_pages_and_renderings_work_with_s3(s3_media, client, django_user_model):
    data = make_galaxy("NGC 4100")
    assert {data.image.file.name, data.image.raw.name} <= s3_media.keys()
    assert {m.data.name for m in data.masks.values() if m.data} <= s3_media.keys()
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True, is_superuser=True))
    mask = data.masks[("spiral", "volunteers")]
    for url in (reverse("admin:segmentation_galaxy_change", args=[data.galaxy.pk]),
                reverse("admin:segmentation_image_change", args=[data.image.pk]),
                reverse("admin:segmentation_mask_change", args=[mask.pk])):
        assert client.get(url).status_code == 200, url
    response = client.get(reverse("segmentation:image-png", args=[data.image.pk]), {"stretch": "colour"})
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    stored = pngcodec.decode(s3_media.body(data.image.file.name))
    assert np.array_equal(pngcodec.decode(response.content), stored[..., :3])
    response = client.get(reverse("segmentation:image-png", args=[data.image.pk]), {"band": "g"})
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert response["X-Render-Source"] == "band data: g"  # the raw FITS was read back from the bucket
    response = client.get(reverse("segmentation:mask-png", args=[mask.pk]))
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert pngcodec.decode(response.content).shape == (*stored.shape[:2], 4)
