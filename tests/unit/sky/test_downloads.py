"""The downloader against a real HTTP server on 127.0.0.1 (no test leaves the machine)."""
import hashlib
import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from astropy.io import fits

from evalcore.sky import downloads
from tests.downloads_loopback import LoopbackServer


def fits_bytes(seed=0, n=64) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(np.random.default_rng(seed).normal(size=(n, n)).astype(np.float32)).writeto(buf)
    return buf.getvalue()


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def test_plain_download_writes_the_file_and_a_second_call_skips_it(server, tmp_path):
    body = fits_bytes()
    server.add("/a.fits", body)
    first = downloads.download(server.url + "/a.fits", tmp_path / "a.fits", backoff=0)
    assert first.status == "downloaded" and first.bytes_received == len(body)
    assert (tmp_path / "a.fits").read_bytes() == body
    assert not (tmp_path / "a.fits.part").exists()
    again = downloads.download(server.url + "/a.fits", tmp_path / "a.fits", backoff=0)
    assert again.status == "skipped" and again.bytes_received == 0
    assert len(server.log) == 1


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    body = fits_bytes(n=256)  # 256 KiB: the server stops after 128 KiB
    server.add("/big.fits", body, drop_first=1)
    got = []
    result = downloads.download(server.url + "/big.fits", tmp_path / "big.fits", backoff=0, on_bytes=got.append)
    assert result.status == "resumed" and result.attempts == 2
    assert (tmp_path / "big.fits").read_bytes() == body
    ranges = [r for _, _, r in server.log]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    assert ranges[1] == f"bytes={len(body) // 2}-"  # every byte received before the drop was kept
    assert sum(got) == len(body)  # nothing fetched twice


def test_a_part_file_left_by_an_earlier_run_is_continued(server, tmp_path):
    body = fits_bytes(seed=3)
    server.add("/c.fits", body)
    (tmp_path / "c.fits.part").write_bytes(body[:1000])
    result = downloads.download(server.url + "/c.fits", tmp_path / "c.fits", backoff=0)
    assert result.status == "resumed" and result.bytes_received == len(body) - 1000
    assert (tmp_path / "c.fits").read_bytes() == body


def test_server_errors_are_retried_then_succeed(server, tmp_path):
    body = fits_bytes(seed=1)
    server.add("/flaky.fits", body, fail_first=2)
    result = downloads.download(server.url + "/flaky.fits", tmp_path / "f.fits", backoff=0)
    assert result.attempts == 3 and (tmp_path / "f.fits").read_bytes() == body


def test_persistent_server_errors_give_up_with_the_status(server, tmp_path):
    server.add("/down.fits", fits_bytes(), fail_first=99)
    with pytest.raises(downloads.DownloadError, match=r"gave up after 3 attempt.*HTTP 500"):
        downloads.download(server.url + "/down.fits", tmp_path / "d.fits", retries=2, backoff=0)
    assert not (tmp_path / "d.fits").exists()


def test_not_found_fails_at_once_with_a_clear_message(server, tmp_path):
    with pytest.raises(downloads.DownloadError, match=r"not found on the server \(HTTP 404\)"):
        downloads.download(server.url + "/missing.fits", tmp_path / "m.fits", backoff=0)
    assert len(server.log) == 1 and not (tmp_path / "m.fits").exists()


def test_a_body_that_is_not_fits_is_refused_and_not_kept(server, tmp_path):
    server.add("/html.fits", b"<html>maintenance</html>")
    with pytest.raises(downloads.DownloadError, match="unusable.*FITS"):
        downloads.download(server.url + "/html.fits", tmp_path / "h.fits", retries=1, backoff=0)
    assert not (tmp_path / "h.fits").exists() and not (tmp_path / "h.fits.part").exists()


def test_checksum_and_size_are_checked(server, tmp_path):
    body = fits_bytes(seed=2)
    server.add("/s.fits", body)
    good = hashlib.sha256(body).hexdigest()
    downloads.download(server.url + "/s.fits", tmp_path / "s.fits", checksum=good, expected_size=len(body))
    with pytest.raises(downloads.DownloadError, match="does not match"):
        downloads.download(server.url + "/s.fits", tmp_path / "t.fits", checksum="0" * 64, retries=0)
    with pytest.raises(downloads.DownloadError, match=f"bytes where {len(body) + 1}"):
        downloads.download(server.url + "/s.fits", tmp_path / "u.fits", expected_size=len(body) + 1, retries=0)


def test_a_broken_file_under_the_final_name_is_fetched_again(server, tmp_path):
    body = fits_bytes(seed=4)
    server.add("/b.fits", body)
    (tmp_path / "b.fits").write_bytes(b"SIMPLE  = garbage")
    result = downloads.download(server.url + "/b.fits", tmp_path / "b.fits", backoff=0)
    assert result.status == "downloaded" and (tmp_path / "b.fits").read_bytes() == body


def test_bodies_over_the_limit_are_refused(server, tmp_path):
    server.add("/huge.fits", fits_bytes(n=64))
    with pytest.raises(downloads.DownloadError, match="more than the limit"):
        downloads.download(server.url + "/huge.fits", tmp_path / "x.fits", max_bytes=1000)
    assert not list(tmp_path.iterdir())


def test_gz3d_names_and_urls():
    expected = "gz3d_1-109223_127_14715847.fits.gz"
    for written in ("gz3d_1-109223_127_14715847.fits.gz", "1-109223_127_14715847.fits", "gz3d_1-109223_127_14715847"):
        assert downloads.gz3d_file_name(written) == expected
    assert downloads.gz3d_url("https://x/v4_0_0", expected) == f"https://x/v4_0_0/{expected}"
    assert downloads.DEFAULT_GZ3D_BASE_URL.endswith("/dr17/manga/morphology/galaxyzoo3d/v4_0_0/")
    with pytest.raises(ValueError, match="not a GZ3D file name"):
        downloads.gz3d_file_name("../../etc/passwd")


def test_cutout_url_carries_position_layer_bands_scale_and_size():
    url = downloads.cutout_url("https://svc/cutout.fits", 150.123, -2.5, size=128)
    query = parse_qs(urlsplit(url).query)
    assert query == {"ra": ["150.1230000"], "dec": ["-2.5000000"], "layer": ["ls-dr10"], "pixscale": ["0.262"],
                     "bands": ["grz"], "size": ["128"]}
    with pytest.raises(ValueError, match="cutout size"):
        downloads.cutout_url("https://svc", 0, 0, size=0)


def test_checksum_files_are_read_by_file_name(tmp_path):
    (tmp_path / "sums").write_text(f"{'a' * 40}  ./gz3d_1-1_19_5.fits.gz\nnot a line\n{'b' * 32} *other.fits\n")
    assert downloads.read_checksums(tmp_path / "sums") == {"gz3d_1-1_19_5.fits.gz": "a" * 40, "other.fits": "b" * 32}


def test_a_part_file_that_is_already_whole_is_finished_without_refetching(server, tmp_path):
    body = fits_bytes(seed=5)
    server.add("/w.fits", body)
    (tmp_path / "w.fits.part").write_bytes(body)
    result = downloads.download(server.url + "/w.fits", tmp_path / "w.fits", backoff=0)
    assert result.bytes_received == 0 and (tmp_path / "w.fits").read_bytes() == body
    assert server.log == [("GET", "/w.fits", f"bytes={len(body)}-")]  # answered 416 with the total size
