"""Downloads of survey files over HTTP(S) with retries, resume and checks (no Django).

``download`` writes into ``<dest>.part`` and renames to ``dest`` only after the checks pass, so a file
under its final name is always complete: a second run skips it. A dropped connection keeps the part
file and the next attempt asks for the rest with an HTTP Range request; servers that ignore Range start
over. Connection errors, time-outs, short bodies and HTTP 408/429/5xx are retried with exponential
backoff; other HTTP errors (404, 403, ...) fail at once with the status in the message.

Sources: the Galaxy Zoo: 3D release on the SDSS Science Archive Server and the DESI Legacy Surveys
cutout service. Both base URLs are parameters; the defaults below are the public locations.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import requests
import urllib3

DEFAULT_GZ3D_BASE_URL = "https://data.sdss.org/sas/dr17/manga/morphology/galaxyzoo3d/v4_0_0/"
DEFAULT_CUTOUT_URL = "https://www.legacysurvey.org/viewer/cutout.fits"
CUTOUT_LAYER = "ls-dr10"
CUTOUT_BANDS = "grz"
CUTOUT_PIXEL_SCALE = 0.262  # arcsec / px, the Legacy Surveys' native scale
CUTOUT_SIZE = 256  # px
MAX_CUTOUT_SIZE = 3000  # px; the service refuses larger cutouts
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "evalsite (galaxy segmentation research; python-requests)"
CHUNK_BYTES = 64 * 1024
HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}


class DownloadError(Exception):
    """A download that failed for good; the message names the URL and the reason."""


@dataclass
class DownloadResult:
    path: Path
    status: str  # "downloaded" | "resumed" | "skipped"
    bytes_received: int  # over the network in this call
    attempts: int


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


# --- URLs -------------------------------------------------------------------------------------------
def gz3d_file_name(name: str) -> str:
    """The release's file name for ``gz3d_<MANGAID>_<IFU>_<subject>.fits.gz`` written with or without the
    ``gz3d_`` prefix and ``.gz`` (as ``gz3d_metadata.fits`` lists it)."""
    name = Path(name.strip()).name
    if not re.fullmatch(r"(gz3d_)?[0-9A-Za-z+-]+_\d+_\d+(\.fits)?(\.gz)?", name):
        raise ValueError(f"{name!r} is not a GZ3D file name (gz3d_<MANGAID>_<IFUDESIGN>_<SUBJECT>.fits.gz)")
    if not name.startswith("gz3d_"):
        name = "gz3d_" + name
    if not name.endswith(".gz"):
        name = name + ".gz" if name.endswith(".fits") else name + ".fits.gz"
    return name


def gz3d_url(base_url: str, file_name: str) -> str:
    return base_url.rstrip("/") + "/" + file_name


def cutout_url(base_url: str, ra: float, dec: float, *, size: int = CUTOUT_SIZE,
               pixel_scale: float = CUTOUT_PIXEL_SCALE, layer: str = CUTOUT_LAYER, bands: str = CUTOUT_BANDS) -> str:
    """URL of a FITS cutout of ``size`` x ``size`` px at ``pixel_scale`` arcsec/px centred on (ra, dec) deg."""
    if not 0 < size <= MAX_CUTOUT_SIZE:
        raise ValueError(f"cutout size {size} px is outside 1..{MAX_CUTOUT_SIZE}")
    if pixel_scale <= 0:
        raise ValueError(f"pixel scale {pixel_scale} arcsec/px is not positive")
    query = urlencode({"ra": f"{ra:.7f}", "dec": f"{dec:.7f}", "layer": layer, "pixscale": f"{pixel_scale:g}",
                       "bands": bands, "size": int(size)})
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


# --- checks -----------------------------------------------------------------------------------------
def file_digest(path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checksums(path) -> dict[str, str]:
    """``<hex>  <file name>`` lines (md5sum, sha1sum or sha256sum output) -> {file name: hex}."""
    out = {}
    for line in Path(path).read_text().splitlines():
        parts = line.strip().split()
        if len(parts) >= 2 and len(parts[0]) in HASH_LENGTHS and re.fullmatch(r"[0-9a-fA-F]+", parts[0]):
            out[Path(parts[-1].lstrip("*")).name] = parts[0].lower()
    return out


def verify_fits(path) -> None:
    """Raise ValueError unless the file opens as FITS with every HDU readable (gzip CRC included)."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) == 0:
                raise ValueError("no HDU")
            for hdu in hdul:
                _ = hdu.data
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"does not open as FITS ({exc})") from None


def _check(path: Path, expected_size: int | None, checksum: str | None, verify: Callable | None) -> None:
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ValueError(f"{size} bytes where {expected_size} were expected")
    if checksum:
        algorithm = HASH_LENGTHS.get(len(checksum))
        if algorithm is None:
            raise ValueError(f"checksum {checksum!r} is not md5, sha1 or sha256 hex")
        got = file_digest(path, algorithm)
        if got != checksum.lower():
            raise ValueError(f"{algorithm} {got} does not match the expected {checksum.lower()}")
    if verify is not None:
        verify(path)


# --- the download -----------------------------------------------------------------------------------
def make_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _total_from_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``bytes 100-199/200`` or ``bytes */200``."""
    m = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (value or "").strip())
    if not m:
        return None, None
    first = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return first, total


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def download(url: str, dest, *, session: requests.Session | None = None, retries: int = 4, backoff: float = 1.0,
             timeout: float = 60.0, expected_size: int | None = None, checksum: str | None = None,
             verify: Callable | None = verify_fits, max_bytes: int | None = None,
             on_bytes: Callable[[int], None] | None = None) -> DownloadResult:
    """Fetch ``url`` into ``dest``; skip when ``dest`` is already there and passes the checks.

    ``retries``: further attempts after the first; waits ``backoff * 2**k`` s (or the server's
    Retry-After, at most 60 s). ``checksum``: md5/sha1/sha256 hex. ``verify(path)`` raises ValueError for
    a bad file (default: must open as FITS). ``max_bytes`` refuses bigger bodies. ``on_bytes(n)`` is
    called per chunk received (progress bars). Raises DownloadError.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        try:
            _check(dest, expected_size, checksum, verify)
            return DownloadResult(dest, "skipped", 0, 0)
        except ValueError:
            dest.unlink()  # an earlier, broken copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    own_session = session is None
    session = session or make_session()
    received, attempts, resumed, last = 0, 0, False, ""
    try:
        while True:
            attempts += 1
            try:
                got, was_resume = _attempt(session, url, part, timeout, max_bytes, on_bytes)
                received += got
                resumed = resumed or was_resume
                try:
                    _check(part, expected_size, checksum, verify)
                except ValueError as exc:
                    part.unlink(missing_ok=True)  # a bad whole file: start from zero next time
                    raise _Retry(f"downloaded file is unusable: {exc}") from None
                os.replace(part, dest)
                return DownloadResult(dest, "resumed" if resumed else "downloaded", received, attempts)
            except _Retry as exc:
                last, wait = str(exc), exc.wait
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError) as exc:
                last, wait = f"{type(exc).__name__}: {str(exc)[:300]}", None
            if attempts > retries:
                raise DownloadError(f"{url}: gave up after {attempts} attempt(s); last error: {last}")
            time.sleep(min(60.0, wait if wait is not None else backoff * 2 ** (attempts - 1)))
    finally:
        if own_session:
            session.close()


def _attempt(session, url, part: Path, timeout, max_bytes, on_bytes) -> tuple[int, bool]:
    """One request; appends to ``part``. Returns (bytes received, whether it continued a part file)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise DownloadError(f"{url}: not a usable URL ({exc})") from None
    with response:
        status = response.status_code
        if status == 416 and have:
            _, total = _total_from_content_range(response.headers.get("Content-Range"))
            if total == have:
                return 0, True  # the part file already holds everything
            part.unlink()
            raise _Retry(f"HTTP 416 for a resume at byte {have}; starting over")
        if status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status} {response.reason}", _retry_after(response))
        if status == 404:
            raise DownloadError(f"{url}: not found on the server (HTTP 404)")
        if status >= 400:
            raise DownloadError(f"{url}: HTTP {status} {response.reason}")
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if status == 206 and have:
            first, total = _total_from_content_range(response.headers.get("Content-Range"))
            if first != have:
                part.unlink()
                raise _Retry(f"the server resumed at byte {first}, not {have}; starting over")
            mode, resumed = "ab", True
        else:
            mode, resumed, have = "wb", False, 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() and not encoded else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url}: {total} bytes, more than the limit of {max_bytes}")
        received = 0
        with part.open(mode) as fh:
            # read1 hands over whatever has arrived, so a connection that drops keeps every byte received
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                fh.write(chunk)
                received += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
                if max_bytes is not None and have + received > max_bytes:
                    fh.close()
                    part.unlink()
                    raise DownloadError(f"{url}: more than the limit of {max_bytes} bytes")
        if total is not None and have + received != total:
            raise _Retry(f"connection closed after {have + received} of {total} bytes")
    return received, resumed
