"""Proof of blinding: crawl everything raters of a three-source study receive, from the invitation link to
the final blinding check, and look for anything that could tell one source from another.

- No source identifier (producer kind, name, version, id-bearing URL, storage path, file name, content
  hash) in any HTML, URL or response header; URLs only of the known opaque forms.
- Every picture a plain PNG with only IHDR/IDAT/IEND chunks; all pictures of a kind share size, bit depth
  and colour type, whatever their source; neutral headers (no validators, dates, redirects to storage).
- Panel positions counted from the bytes raters were actually served: every source appears in every
  position equally often over the study.
"""
from __future__ import annotations

import re
import struct
from collections import Counter
from urllib.parse import urlsplit

import pytest

from ratings.models import Assignment, Candidate, PanelImage, Rater
from ratings.services import panels
from segmentation.models import Mask, Producer
from tests.factories.studies import spiral_study
from tests.walks import walk_raters

N_RATERS = 3
ALLOWED_URL = re.compile(
    r"^/(static/\S+"
    r"|rate/"
    r"|rate/join/[\w-]{20,}/"
    r"|rate/s/\d+/(consent/|profile/|guide/|check/|practice/\d+/)?"
    r"|rate/s/\d+/practice/\d+/(p\d-(mask|layer)|image-(colour|linear|asinh|log))\.png"
    r"|rate/s/\d+/check/[\w-]{20,}\.png"
    r"|rate/s/\d+/guide/spiral-[0-3]-(image|mask|layer)\.png"
    r"|rate/a/[\w-]{20,}/((p\d-(mask|layer)|image-(colour|linear|asinh|log))\.png)?"
    r"|accounts/(login|logout)/(\?next=\S*)?)$")
NEUTRAL_HEADERS = {"content-type", "content-length", "cache-control", "x-content-type-options", "vary",
                   "x-frame-options", "referrer-policy", "cross-origin-opener-policy", "location", "set-cookie",
                   "expires", "content-language", "server-timing"}
REVEALING_HEADERS = {"last-modified", "etag", "content-disposition", "age", "x-accel-redirect", "x-sendfile"}


def png_chunks(data: bytes) -> list[tuple[str, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        out.append((data[i + 4:i + 8].decode("ascii"), data[i + 8:i + 8 + length]))
        i += 12 + length
    return out






@pytest.fixture
def crawled(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    study = spiral_study(n_galaxies=6, planned_raters=N_RATERS, raters_per_item=3, practice_items=1)
    return study, walk_raters(study, N_RATERS)




def identifiers(study) -> list[str]:
    """Everything that names or points at a source or its stored files."""
    out = ["producer", "/media/", "masks/", "panels/", "truth"]
    for p in Producer.objects.filter(studies=study):
        out += [p.kind, p.name, f"{p.name} {p.version}", p.get_kind_display(), p.parameters_hash]
    for m in Mask.objects.filter(candidates__item__study=study).distinct():
        out += [m.content_hash, m.data.name]
    out += [pi.file.name for pi in PanelImage.objects.filter(candidate__item__study=study)]
    return sorted({x.lower() for x in out if x})


def test_no_source_identifier_reaches_a_rater(crawled):
    study, crawlers = crawled
    secret = identifiers(study)
    assert len(secret) > 20
    for crawler in crawlers:
        assert len(crawler.pages) >= 10 and len(crawler.pictures) >= 30
        for url in crawler.urls:
            path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
            assert ALLOWED_URL.match(path), url
            assert not any(s in url.lower() for s in secret), url
        for headers in crawler.headers:
            assert not REVEALING_HEADERS & set(headers), headers
            assert set(k for k in headers if not k.startswith("cookie:")) <= NEUTRAL_HEADERS, headers
            text = " ".join(f"{k}: {v}" for k, v in headers.items()).lower()
            assert not any(s in text for s in secret), text
        for url, html in crawler.pages.items():
            low = html.lower()
            if "/check/" in url:
                # the one page that names kinds of method: the same choice list under every panel
                fieldsets = re.findall(r'<fieldset class="guess">.*?</fieldset>', html, re.S)
                normalised = {re.sub(r"[\w-]{20,}", "TOKEN", re.sub(r"Mask \d", "Mask N", re.sub(
                    r"mask \d", "mask N", f))) for f in fieldsets}
                assert len(fieldsets) >= 1 and len(normalised) == 1
                low = re.sub(r'<fieldset class="guess">.*?</fieldset>', "", low, flags=re.S)
            leaked = [s for s in secret if s in low]
            assert not leaked, (url, leaked)


def test_every_picture_is_encoded_identically(crawled):
    study, crawlers = crawled
    formats: dict[str, set] = {}
    for crawler in crawlers:
        for url, data in crawler.pictures.items():
            chunks = png_chunks(data)
            names = [name for name, _ in chunks]
            assert names[0] == "IHDR" and names[-1] == "IEND", url
            assert set(names) == {"IHDR", "IDAT", "IEND"}, (url, names)  # no text, time, gamma, profile
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
            kind = re.search(r"(mask|layer|image|check/)", url).group(1)
            formats.setdefault(kind, set()).add((width, height, depth, colour, interlace))
    size = panels.PANEL_SIZE
    # one encoding per kind of picture, whatever the source; the check pictures are mask pictures
    assert formats == {"mask": {(size, size, 8, 2, 0)}, "layer": {(size, size, 8, 6, 0)},
                       "image": {(size, size, 8, 2, 0)}, "check/": {(size, size, 8, 2, 0)}}, formats


def test_panel_positions_are_balanced_over_what_raters_were_served(crawled):
    study, crawlers = crawled
    by_bytes = {}
    for c in Candidate.objects.filter(item__study=study).select_related("producer"):
        by_bytes.setdefault(panels.candidate_png(c, "mask"), set()).add((c.item_id, c.producer.kind))
    counts: Counter = Counter()
    n_items = 0
    for crawler, rater in zip(crawlers, Rater.objects.filter(study=study).order_by("user__username"),
                              strict=True):
        for a in Assignment.objects.filter(rater=rater):
            n_items += 1
            for pos in range(3):
                served = crawler.pictures[f"/rate/a/{a.token}/p{pos}-mask.png"]
                (kind,) = {k for item, k in by_bytes[served] if item == a.item_id}
                counts[kind, pos] += 1
    assert n_items == 6 * 3
    table = {(k, p): counts[k, p] for k in ("volunteers", "model", "sparcfire") for p in range(3)}
    assert set(table.values()) == {6}, table  # 18 ratings: each source 6 times in each position
