"""Exact, compact storage of per-pixel fraction maps (no Django).

A mask is stored as integer numerators ``k`` with one denominator ``N`` per mask, so that the fraction
of a pixel is exactly ``k / N``:

- volunteer masks: ``k`` = number of volunteers whose polygons cover the pixel, ``N`` = classifications;
- model masks: ``k = round(255 * f)``, ``N = 255`` (quantisation error at most 1/510);
- binary masks (arc finder, truth): ``k`` in {0, 1}, ``N = 1``.

The numerators are written as a lossless greyscale PNG: 8-bit when ``N <= 255``, else 16-bit. PNG's
zlib compression keeps a 256 px crowd mask near 1 kB, a binary mask under 1 kB and a soft model map near 12 kB (see
``docs/masks.md``). The content hash covers the denominator, the shape and the numerators, so two
masks with the same fractions hash alike whatever produced them.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from evalcore.formats import pngcodec

MODEL_DENOMINATOR = 255


@dataclass(frozen=True)
class EncodedMask:
    png: bytes
    denominator: int
    height: int
    width: int
    content_hash: str


def _check_numerators(numerators: np.ndarray, denominator: int) -> np.ndarray:
    if denominator < 1 or denominator > 65535:
        raise ValueError(f"denominator must be in 1..65535, got {denominator}")
    arr = np.asarray(numerators)
    if arr.ndim != 2:
        raise ValueError(f"a mask is 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("a mask cannot be empty (0 pixels)")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"numerators must be integers, got {arr.dtype}")
    if arr.min() < 0 or arr.max() > denominator:
        raise ValueError(f"numerators must lie in 0..{denominator}, got {arr.min()}..{arr.max()}")
    return arr


def content_hash(numerators: np.ndarray, denominator: int) -> str:
    arr = np.ascontiguousarray(numerators, dtype=np.uint16)
    h = hashlib.sha256()
    h.update(f"fraction-map:v1:{denominator}:{arr.shape[0]}x{arr.shape[1]}:".encode())
    h.update(arr.astype("<u2").tobytes())
    return h.hexdigest()


def encode(numerators: np.ndarray, denominator: int) -> EncodedMask:
    """Encode integer numerators (each in 0..denominator) as a PNG."""
    arr = _check_numerators(numerators, denominator)
    pixels = arr.astype(np.uint8 if denominator <= 255 else np.uint16)
    return EncodedMask(
        # zlib's run-length strategy after PNG's row filters: 2-40x faster to write than the default
        # strategy and on real masks a few % smaller (docs/model-quality.md); the hash does not depend on it.
        png=pngcodec.encode(pixels, compress_level=pngcodec.COMPACT, rle=True),
        denominator=int(denominator),
        height=arr.shape[0],
        width=arr.shape[1],
        content_hash=content_hash(arr, denominator),
    )


def encode_fractions(fractions: np.ndarray, denominator: int = MODEL_DENOMINATOR) -> EncodedMask:
    """Quantise fractions in [0, 1] to ``k / denominator`` (rounding to nearest) and encode them."""
    f = np.asarray(fractions, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError("fractions contain NaN or infinite values")
    f = np.clip(f, 0.0, 1.0)
    return encode(np.rint(f * denominator).astype(np.int64), denominator)


def decode_numerators(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.array(img)


def decode(png: bytes, denominator: int) -> np.ndarray:
    """The fraction map, float32 in [0, 1]."""
    return decode_numerators(png).astype(np.float32) / np.float32(denominator)
