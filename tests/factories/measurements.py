"""Measurement test data: galaxies, images with a known pixel scale and WCS, and masks drawn at known
places (bars, logarithmic spirals), all written through segmentation.services."""
from __future__ import annotations

import numpy as np

from evalcore.formats import coords
from evalcore.sky.splits import split_for
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

SIZE = 64
PIXEL_SCALE = 0.4  # arcsec / px


def disk_image(size: int = SIZE, axis_ratio: float = 1.0, major_along_rows: bool = True) -> np.ndarray:
    """A smooth elliptical disk centred on the image, (H, W, 3) uint8; major axis north-south when
    ``major_along_rows`` (position angle 0 deg), else east-west (90 deg)."""
    rows, cols = np.indices((size, size)) - (size - 1) / 2
    a, b = size / 5, size / 5 * axis_ratio
    r2 = (rows / a) ** 2 + (cols / b) ** 2 if major_along_rows else (rows / b) ** 2 + (cols / a) ** 2
    light = 230 * np.exp(-0.5 * r2)
    return np.repeat(light[..., None], 3, axis=2).astype(np.uint8)


def galaxy_with_image(name: str, *, ra: float | None = 150.0, dec: float | None = 2.0,
                      redshift: float | None = 0.05, axis_ratio: float | None = None,
                      position_angle: float | None = None, synthetic: bool = False, truth: dict | None = None,
                      rgb: np.ndarray | None = None, pixel_scale: float | None = PIXEL_SCALE,
                      kind: str = "survey_cutout"):
    galaxy, _ = galaxy_upsert(name=name, defaults={
        "ra": ra, "dec": dec, "redshift": redshift, "axis_ratio": axis_ratio, "position_angle": position_angle,
        "synthetic": synthetic, "truth": truth})
    rgb = disk_image() if rgb is None else rgb
    wcs = coords.north_up_wcs(ra, dec, rgb.shape[:2], pixel_scale) if ra is not None and pixel_scale else None
    image, _ = image_store(galaxy=galaxy, kind=kind, rgb=rgb, wcs_header=coords.wcs_to_text(wcs),
                           pixel_scale=pixel_scale)
    return galaxy, image


def ra_in_split(split: str, *, start: float, dec: float = 2.0, step: float = 0.05) -> float:
    """The first RA (deg) from ``start`` on, in ``step``s, whose sky cell at ``dec`` is in ``split``."""
    ra = start
    while split_for(ra, dec) != split:
        ra += step
    return ra


def producer(kind: str, name: str | None = None, version: str = "1"):
    return producer_get_or_create(kind=kind, name=name or f"test {kind}", version=version,
                                  parameters={"test": kind}, code_version="test-code-1")


def bar_numerators(rows: slice, cols: slice, size: int = SIZE) -> np.ndarray:
    arr = np.zeros((size, size), np.int64)
    arr[rows, cols] = 1
    return arr


BAR_ROWS, BAR_COLS = slice(30, 34), slice(12, 52)  # a bar across the middle of a SIZE px image


def store_spiral(galaxy, image, prod, **kw):
    """A two-armed logarithmic spiral mask (pitch 20 deg + ``i``) of source ``prod``."""
    return mask_store(galaxy=galaxy, image=image, structure="spiral", producer=prod, state="marked",
                      numerators=log_spiral_numerators(pitch_deg=20 + kw.pop("i", 0)), **kw).mask


def store_bar(galaxy, image, prod, rows: slice, cols: slice, **kw):
    return mask_store(galaxy=galaxy, image=image, structure="bar", producer=prod, state="marked",
                      numerators=bar_numerators(rows, cols, image.height), **kw).mask


def log_spiral_numerators(size: int = SIZE, pitch_deg: float = 25.0, arms: int = 2, s_wise: bool = True,
                          width: float = 0.45, axis_ratio: float = 1.0) -> np.ndarray:
    """Arms r = r0 exp(b theta) drawn on a disk whose major axis runs north-south (position angle 0) seen
    at ``axis_ratio`` b/a, 0/1 numerators. S-wise (positive pitch in evalcore.measure.spiral) winds
    clockwise going outwards with theta anticlockwise on the image."""
    rows, cols = np.indices((size, size)) - (size - 1) / 2
    cols = cols / axis_ratio  # east-west is the minor axis: the disk is foreshortened along it
    r = np.hypot(rows, cols)
    theta = np.arctan2(-rows, -cols)  # anticlockwise on the displayed image (north up, east left)
    b = np.tan(np.radians(pitch_deg))
    sign = 1 if s_wise else -1
    out = np.zeros((size, size), np.int64)
    with np.errstate(divide="ignore"):
        ln_r = np.log(np.maximum(r, 1e-6))
    for k in range(arms):
        phase = 2 * np.pi * k / arms
        expected = sign * (ln_r - np.log(4.0)) / b + phase  # theta of the arm at radius r
        diff = (theta - expected + np.pi) % (2 * np.pi) - np.pi
        out[(np.abs(diff) < width) & (r > 5) & (r < size / 2 - 2)] = 1
    return out
