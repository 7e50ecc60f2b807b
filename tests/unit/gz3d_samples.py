"""Small GZ3D files in the real layout, written by the tests themselves (``evalcore.formats.gz3d.write_gz3d``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from evalcore.formats import gz3d

RA, DEC = 150.0, 2.0


def square(x0, y0, size):
    """A square polygon [x, y] px covering pixel centres x0..x0+size-1, y0..y0+size-1 (half-open rule)."""
    return [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]]


def picture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth galaxy-like RGB picture (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2) / size
    base = 255 * np.exp(-r * 8)
    rgb = np.stack([base, base * 0.8, base * 0.6], axis=-1) + rng.normal(0, 3, (size, size, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def metadata(manga_id="1-100001", iau_name="J100000.00+020000.0", ra=RA, dec=DEC, **extra):
    meta = {"ra": ra, "dec": dec, "MANGAID": manga_id, "IAUNAME": iau_name, "IFUDESIGNSIZE": 127.0,
            "MANGA_TILEID": 7443.0, "nsa_id": 12345, "explorer_link": "https://example.invalid/",
            "GZ_total_classifications": 40, "GZ_bar_votes": 3, "GZ_spiral_votes": 20, "sample": "test"}
    meta.update(extra)
    return {k: v for k, v in meta.items() if v is not None}


def spiral_drawings(size: int, n: int = 5):
    """n classifications: the first n-1 draw an arm square, one of them two overlapping squares; the
    last drew nothing. Each square covers a known block of pixels."""
    s = size // 5
    out = []
    for i in range(n - 1):
        polys = [square(s, s, s)]
        if i == 0:
            polys.append(square(s + s // 2, s, s))  # overlaps the first: counts once for this volunteer
        out.append(gz3d.Classification(1000 + i, f"2017-03-0{i % 9 + 1} 12:00:00 UTC", polys))
    out.append(gz3d.Classification(1000 + n - 1, "2017-03-09 12:00:00 UTC", []))
    return out


def bar_drawings(size: int, n: int = 3):
    c = size // 2
    return [gz3d.Classification(2000 + i, "2017-04-01 10:00:00 UTC", [square(c - 3, c - 1, 6)]) for i in range(n)]


def write_sample(path: Path, *, size: int = 101, spiral=None, bar=None, manga_id="1-100001",
                 iau_name="J100000.00+020000.0", ra=RA, dec=DEC, extra_hdus=(), image=None, **meta_extra) -> Path:
    """Write one file; spiral/bar default to ``spiral_drawings`` / ``bar_drawings`` (pass [] for not asked)."""
    path = Path(path)
    gz3d.write_gz3d(
        path,
        image=picture(size) if image is None else image,
        header=gz3d.make_wcs_header(ra, dec, (size, size)),
        metadata=metadata(manga_id=manga_id, iau_name=iau_name, ra=ra, dec=dec, **meta_extra),
        spiral=spiral_drawings(size) if spiral is None else spiral,
        bar=bar_drawings(size) if bar is None else bar,
        extra_hdus=extra_hdus,
    )
    return path
