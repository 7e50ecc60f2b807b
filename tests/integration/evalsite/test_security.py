"""Security: log-in rate limiting, import size and pixel limits (real decompression bombs), and user-given
names that reach the filesystem."""
from __future__ import annotations

import gzip
import re
import resource
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import time_machine
from astropy.io import fits
from django.db import connection
from django.urls import reverse
from gz3d_samples import write_sample

from evalcore.sky import downloads
from segmentation.models import Galaxy, Image
from segmentation.services.exports import safe_filename
from segmentation.services.imports.fetch import cutout_file_name, gz3d_requests
from segmentation.services.imports.gz3d import import_gz3d
from segmentation.services.imports.images import import_image_folder

pytestmark = pytest.mark.django_db
HOSTILE_NAMES = ["../../etc/passwd", "/etc/hostname", "..", ".", "a/../../b", "C:\\Windows\\win.ini", "x\x00y",
                 "~root/.ssh/authorized_keys", ".hidden", "J1234+5678/../../up"]


# --- log-in rate limit -----------------------------------------------------------------------------------
@pytest.fixture
def ann(django_user_model):
    return django_user_model.objects.create_user("ann", password="the-right-pass-1")


@pytest.fixture
def limits(settings):
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_USER = 3
    settings.EVALSITE_LOGIN_MAX_FAILURES_PER_IP = 6
    settings.EVALSITE_LOGIN_WINDOW_SECONDS = 60
    # a Redis that does not exist: the rate limit must not need one
    settings.RQ_QUEUES = {name: {**conf, "URL": "redis://127.0.0.1:1/0"} for name, conf in settings.RQ_QUEUES.items()}
    return settings


def attempt(client, username, password, ip="192.0.2.1", url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_failed_logins_for_one_username_are_refused_with_429(client, ann, limits):
    for _ in range(3):
        response = attempt(client, "ann", "wrong")
        assert response.status_code == 200 and b"correct username and password" in response.content
    refused = attempt(client, "ANN", "the-right-pass-1")  # usernames are counted case-insensitively
    assert refused.status_code == 429
    assert b"Too many failed log-in attempts for this username" in refused.content
    assert int(refused["Retry-After"]) == 60
    assert "_auth_user_id" not in client.session  # the right password did not get in while refused
    # another username from the same address is not blocked by ann's count
    assert attempt(client, "bob", "wrong").status_code == 200
    with connection.cursor() as cur:  # the counts are rows of the database cache
        cur.execute("SELECT count(*) FROM evalsite_ratelimit_cache")
        assert cur.fetchone()[0] >= 3


def test_the_window_ends_and_a_success_clears_the_username_count(client, ann, limits):
    limits.EVALSITE_LOGIN_WINDOW_SECONDS = 60
    with time_machine.travel(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(3):
            attempt(client, "ann", "wrong")
        assert attempt(client, "ann", "the-right-pass-1").status_code == 429
        clock.shift(59)
        assert attempt(client, "ann", "the-right-pass-1").status_code == 429  # still inside the window
        clock.shift(2)
        assert attempt(client, "ann", "the-right-pass-1").status_code == 302  # window over: in
        client.logout()
    for _ in range(2):
        attempt(client, "ann", "wrong")
    assert attempt(client, "ann", "the-right-pass-1").status_code == 302
    client.logout()
    for _ in range(2):  # the success reset ann's count: two more failures are still under the limit
        assert attempt(client, "ann", "wrong").status_code == 200
    assert attempt(client, "ann", "the-right-pass-1").status_code == 302


def test_one_address_guessing_many_usernames_is_refused(client, ann, limits):
    for i in range(6):
        assert attempt(client, f"user{i}", "guess", ip="198.51.100.7").status_code == 200
    refused = attempt(client, "ann", "the-right-pass-1", ip="198.51.100.7")
    assert refused.status_code == 429 and b"from your network address" in refused.content
    assert attempt(client, "ann", "the-right-pass-1", ip="198.51.100.8").status_code == 302


def test_a_signed_in_user_cannot_clear_someone_elses_count(client, ann, django_user_model, limits):
    django_user_model.objects.create_user("eve", password="eve-pass-123456")
    client.login(username="eve", password="eve-pass-123456")
    for _ in range(3):
        assert attempt(client, "ann", "wrong").status_code == 200
    assert attempt(client, "ann", "the-right-pass-1").status_code == 429


def test_only_trusted_proxies_set_the_client_address(client, ann, limits):
    limits.EVALSITE_TRUSTED_PROXY_COUNT = 1
    for i in range(6):  # the left-most entry is the client's own claim: changing it does not help
        response = client.post("/accounts/login/", {"username": f"u{i}", "password": "x"}, REMOTE_ADDR="10.0.0.1",
                               HTTP_X_FORWARDED_FOR=f"203.0.113.{i}, 192.0.2.50")
        assert response.status_code == 200
    blocked = client.post("/accounts/login/", {"username": "ann", "password": "the-right-pass-1"},
                          REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.99, 192.0.2.50")
    assert blocked.status_code == 429
    other = client.post("/accounts/login/", {"username": "ann", "password": "the-right-pass-1"},
                        REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.51")
    assert other.status_code == 302


def test_the_admin_login_is_rate_limited_too(client, django_user_model, limits):
    django_user_model.objects.create_user("sam", password="staff-pass-1234", is_staff=True)
    for _ in range(3):
        assert attempt(client, "sam", "wrong", url=reverse("admin:login")).status_code == 200
    refused = attempt(client, "sam", "staff-pass-1234", url=reverse("admin:login"))
    assert refused.status_code == 429
    # the same counter guards both doors
    assert attempt(client, "sam", "staff-pass-1234").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_missing_cache_table_is_made_by_the_first_login(client, ann, limits):
    with connection.cursor() as cur:
        cur.execute("DROP TABLE evalsite_ratelimit_cache")
    assert attempt(client, "ann", "wrong").status_code == 200
    assert "evalsite_ratelimit_cache" in connection.introspection.table_names()


# --- import limits -----------------------------------------------------------------------------------------
def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid greyscale PNG of zeros: tiny on disk, ``width`` x ``height`` bytes once decoded."""
    compressor, row, parts = zlib.compressobj(9), bytes(width + 1), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def import_folder(folder: Path, names: list[str]):
    catalogue = folder.parent / "catalogue.csv"
    catalogue.write_text("name,ra,dec\n" + "".join(f"{n},150.0,2.0\n" for n in names))
    return import_image_folder(directory=folder, catalogue_path=catalogue, progress=False)


def test_a_decompression_bomb_png_is_refused_before_decoding(tmp_path, settings):
    folder = tmp_path / "images"
    folder.mkdir()
    bomb = png_bomb(folder / "bomb.png", 8192, 8192)  # 64 MiB of pixels in a file of about 70 kB
    assert bomb.stat().st_size < 200_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    summary = import_folder(folder, ["bomb"])
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert summary.failed == 1 and summary.imported == 0
    assert f"8192x8192 px, more than the limit of {settings.EVALSITE_MAX_IMAGE_PIXELS} pixels" in \
        summary.failures[0][1]
    assert grew_mib < 48, f"memory peak grew by {grew_mib:.0f} MiB: the image was decoded"
    assert not Image.objects.exists() and not Galaxy.objects.exists()


def test_oversized_fits_files_are_refused_by_bytes_and_by_pixels(tmp_path, settings):
    settings.EVALSITE_MAX_FILE_BYTES = 1024 * 1024
    folder = tmp_path / "images"
    folder.mkdir()
    fits.PrimaryHDU(np.ones((600, 600), np.float32)).writeto(folder / "big.fits")  # 1.4 MB
    with gzip.open(folder / "inflates.fits.gz", "wb") as fh:  # about 4 kB that inflate to 4 MB
        fh.write(_fits_bytes(np.zeros((1000, 1000), np.float32)))
    header = fits.Header({"SIMPLE": True, "BITPIX": 8, "NAXIS": 2, "NAXIS1": 100_000, "NAXIS2": 100_000})
    (folder / "claims.fits").write_bytes(header.tostring().encode() + bytes(2880))  # says 10^10 px, holds none
    summary = import_folder(folder, ["big", "inflates", "claims"])
    reasons = {where.split(": ")[-1]: reason for where, reason in summary.failures}
    assert summary.failed == 3 and not Image.objects.exists(), reasons
    assert re.fullmatch(r"file is \d+ bytes, more than the limit of 1048576", reasons["big.fits"])
    assert reasons["inflates.fits.gz"] == "decompresses to more than the limit of 1048576 bytes"
    assert reasons["claims.fits"] == (f"image is 100000x100000 px, more than the limit of "
                                      f"{settings.EVALSITE_MAX_IMAGE_PIXELS} pixels")


def _fits_bytes(data) -> bytes:
    import io

    buffer = io.BytesIO()
    fits.PrimaryHDU(data).writeto(buffer)
    return buffer.getvalue()


def test_gz3d_import_honours_the_size_limits(tmp_path, settings):
    settings.EVALSITE_MAX_FILE_BYTES = 1024 * 1024
    settings.EVALSITE_MAX_IMAGE_PIXELS = 400 * 400
    path = write_sample(tmp_path / "gz3d_1-100001_127_777.fits.gz", size=700, image=np.zeros((700, 700, 3), np.uint8))
    assert path.stat().st_size < 1024 * 1024  # small on disk, 1.5 MB of pixels inside
    result = import_gz3d([str(path)], progress=False)
    assert result.summary.failed == 1 and "limit" in result.summary.failures[0][1]
    assert not Galaxy.objects.exists()


# --- names from users --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_user_given_names_become_single_safe_file_names(name):
    for made in (safe_filename(name), cutout_file_name(name, layer="ls-dr10", bands="grz", size=256,
                                                       pixel_scale=0.262)):
        assert made == Path(made).name and "/" not in made and "\\" not in made and "\x00" not in made
        assert not made.startswith(".")  # neither hidden nor a parent-directory reference
    with pytest.raises(ValueError, match="is not a GZ3D file name"):
        downloads.gz3d_file_name(name)
    files, problems = gz3d_requests([name])
    assert files == [] and problems and problems[0][0] == name


def test_stored_files_are_named_by_content_never_by_the_user(tmp_path, settings):
    folder = tmp_path / "images"
    folder.mkdir()
    fits.PrimaryHDU(np.ones((3, 16, 16), np.float32)).writeto(folder / "cube.fits")
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("name,ra,dec,file\n"
                         '"../../escaped name",150.0,2.0,cube.fits\n'
                         "stolen,150.0,2.0,../catalogue.csv\n"
                         "absolute,150.0,2.0,/etc/hostname\n")
    summary = import_image_folder(directory=folder, catalogue_path=catalogue, progress=False)
    assert summary.imported == 1 and summary.failed == 2
    reasons = " | ".join(r for _, r in summary.failures)
    assert "outside the image folder" in reasons and "absolute path" in reasons
    image = Image.objects.get()
    assert image.galaxy.name == "../../escaped name"  # kept as data, never used as a path
    media = Path(settings.MEDIA_ROOT).resolve()
    stored = [p for p in media.rglob("*") if p.is_file()]
    assert stored and all(p.resolve().is_relative_to(media) for p in stored)
    for p in stored:
        assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{16,}(_\w+)?\.(png|fits)", "/".join(p.parts[-2:])), p
