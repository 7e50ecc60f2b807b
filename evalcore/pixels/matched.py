"""Matched mask panels: every source's region drawn by one rule on one grid, so only the region differs (no Django).

A source's fraction map is first made into what that source claims is the structure: the pixels at or
above *its own* level (a model version: the threshold chosen with its evaluation on the validation split;
volunteers: the study's consensus level; binary sources: as marked). From there every source goes through
the same steps, whatever it started as:

1. the region (0/1 on the mask's own grid) is resampled to the common panel grid (``PANEL_SIZE`` px
   square) by bilinear interpolation of 0/1 and cut at one half - one resampling, one edge rule, no
   anti-aliasing, so soft edges, steps of 1/N and a faint low-value wash cannot survive;
2. the region is painted in one colour (``MASK_COLOUR``) on black (``mask``) or on a transparent
   background (``layer``, opaque where marked);
3. the pixels are encoded by ``evalcore.formats.pngcodec`` with fixed settings.

An empty region gives the same bytes whatever its source. ``matched_soft`` keeps graded maps as an option
through the same matching: the fractions are cut at a common level set (``SOFT_LEVELS``; nothing below the
floor, the first level, is drawn), each level's region is resampled and cut as above, and painted in the
level's colour, so every source uses the same four colours whatever its native quantisation.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from evalcore.formats import pngcodec

PANEL_SIZE = 320
MASK_COLOUR = (253, 231, 37)  # the top of viridis
SOFT_LEVELS = (0.25, 0.5, 0.75, 1.0)  # the common level set of the soft option; the first is the floor
# viridis at 0.4, 0.6, 0.8 and 1.0: the graded colours of the soft option, brightest = every marker agrees
SOFT_COLOURS = ((42, 120, 142), (34, 168, 132), (122, 209, 81), (253, 231, 37))
VARIANTS = ("mask", "layer")
COMPRESS_LEVEL = pngcodec.COMPACT


def source_region(fractions: np.ndarray, level: float) -> np.ndarray:
    """(H, W) bool: where a source's map reaches its own ``level`` (0 < level <= 1). Non-finite -> not marked."""
    if not 0 < level <= 1:
        raise ValueError(f"a marking level lies in (0, 1], got {level}")
    f = np.asarray(fractions, dtype=np.float32)
    if f.ndim != 2:
        raise ValueError(f"a fraction map is 2-D, got shape {f.shape}")
    # a small tolerance: maps stored as k/255 or k/N must reach a level they equal
    return np.isfinite(f) & (f >= np.float32(level) - 1e-6)


def to_panel_grid(region: np.ndarray, size: int = PANEL_SIZE) -> np.ndarray:
    """A 0/1 region on any grid -> (size, size) bool on the panel grid: bilinear resampling of 0/1 cut at 1/2."""
    arr = np.asarray(region, dtype=np.float32)
    if arr.shape == (size, size):
        return arr >= 0.5
    resized = np.asarray(Image.fromarray(arr, mode="F").resize((size, size), Image.Resampling.BILINEAR))
    return resized >= 0.5


def paint(levels: np.ndarray, colours, variant: str) -> np.ndarray:
    """(S, S) int level index (0 = nothing, k = colours[k-1]) -> ``mask`` RGB on black or ``layer`` RGBA."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown panel variant {variant!r}")
    palette = np.zeros((len(colours) + 1, 4), np.uint8)
    for k, c in enumerate(colours, start=1):
        palette[k] = (*c, 255)
    rgba = palette[levels]
    return rgba[..., :3].copy() if variant == "mask" else rgba


def matched_pixels(fractions: np.ndarray, level: float, variant: str, size: int = PANEL_SIZE) -> np.ndarray:
    """The matched panel of one source's map cut at its own level."""
    on = to_panel_grid(source_region(fractions, level), size)
    return paint(on.astype(np.intp), (MASK_COLOUR,), variant)


def matched_soft_pixels(fractions: np.ndarray, variant: str, size: int = PANEL_SIZE,
                        levels=SOFT_LEVELS) -> np.ndarray:
    """The soft option: the map cut at the common level set, each level drawn by the matched rule."""
    index = np.zeros((size, size), np.intp)
    for k, level in enumerate(levels, start=1):  # nested regions: a higher level paints over a lower one
        index[to_panel_grid(source_region(fractions, level), size)] = k
    return paint(index, SOFT_COLOURS[-len(levels):], variant)


def blank_pixels(variant: str, size: int = PANEL_SIZE) -> np.ndarray:
    return paint(np.zeros((size, size), np.intp), (MASK_COLOUR,), variant)


def encode(pixels: np.ndarray) -> bytes:
    """The one encoding of every panel: plain PNG, fixed zlib level, no metadata."""
    return pngcodec.encode(pixels, compress_level=COMPRESS_LEVEL)
