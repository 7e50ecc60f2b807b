"""Pictures for people: astronomical stretches of galaxy images and colour overlays of masks (no Django).

Images are shown as one grey plane: the raw band data when an image has them (mean of the bands, or one
band), otherwise the luminance of the stored RGB pixels. The plane is clipped at two percentiles of its
finite pixels and stretched (linear, asinh or log) to [0, 1]. Masks are coloured by fraction with a
perceptually uniform, colour-blind-safe colormap; pixels at fraction 0 are transparent, so opacity is
left to the viewer. Row 0 of every array is north, as in the stored images.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # astropy, which band data need, is slow to import; pictures of RGB pixels do not
    from evalcore.formats.banddata import BandData

STRETCHES = ("linear", "asinh", "log")
# viridis and magma are perceptually uniform; cividis is tuned for red-green colour blindness as well.
COLORMAPS = ("viridis", "cividis", "magma")
DEFAULT_STRETCH = "asinh"
DEFAULT_CLIP = (0.5, 99.5)  # percent
ASINH_SOFTENING = 0.1  # fraction of the clipped range where asinh turns from linear to logarithmic
LOG_SCALE = 1000.0
# Rec. 709 luma weights: the grey a person would see in the RGB picture.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], np.float32)


class RenderError(ValueError):
    """Input that cannot be rendered, with the reason."""


# --- stretches ------------------------------------------------------------------------------------------
def clip_limits(data: np.ndarray, low_pct: float = DEFAULT_CLIP[0],
                high_pct: float = DEFAULT_CLIP[1]) -> tuple[float, float]:
    """Values at the ``low_pct`` and ``high_pct`` percentiles (0..100) of the finite pixels.

    A flat (or all non-finite) plane gives a range of width 1 so stretching never divides by zero.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise RenderError(f"clip percentiles must satisfy 0 <= low < high <= 100, got {low_pct}, {high_pct}")
    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def stretch(data: np.ndarray, *, kind: str = DEFAULT_STRETCH, low_pct: float = DEFAULT_CLIP[0],
            high_pct: float = DEFAULT_CLIP[1]) -> np.ndarray:
    """A 2-D plane (any units) -> float32 in [0, 1] after percentile clipping and the named stretch.

    linear: x; asinh: asinh(x / a) / asinh(1 / a) with a = 0.1; log: log10(1 + 1000 x) / log10(1001),
    where x is the plane clipped to [low, high] percentiles and scaled to [0, 1]. Non-finite pixels -> 0.
    """
    if kind not in STRETCHES:
        raise RenderError(f"unknown stretch {kind!r}; choose one of {', '.join(STRETCHES)}")
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim != 2:
        raise RenderError(f"a stretch works on a 2-D plane, got shape {arr.shape}")
    lo, hi = clip_limits(arr, low_pct, high_pct)
    finite = np.isfinite(arr)
    with np.errstate(invalid="ignore"):
        x = np.clip((arr - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
    x = np.where(finite, x, 0.0).astype(np.float32)
    if kind == "asinh":
        x = np.arcsinh(x / ASINH_SOFTENING) / np.arcsinh(1.0 / ASINH_SOFTENING)
    elif kind == "log":
        x = np.log10(1.0 + LOG_SCALE * x) / np.log10(1.0 + LOG_SCALE)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) pixels -> (H, W) float32 luma in the pixels' own units (0..255 for uint8)."""
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        return arr.astype(np.float32)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return arr[..., :3].astype(np.float32) @ LUMA_WEIGHTS
    raise RenderError(f"expected (H, W) or (H, W, 3) pixels, got shape {arr.shape}")


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 0..255 (rounded)."""
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- colormaps and overlays -----------------------------------------------------------------------------
@lru_cache(maxsize=len(COLORMAPS))
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a colormap in COLORMAPS, index = round(255 * value)."""
    if name not in COLORMAPS:
        raise RenderError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    import matplotlib  # only the colormap registry: no pyplot, no backend

    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    lut = to_uint8(rgba[:, :3])
    lut.setflags(write=False)
    return lut


def colormap_stops(name: str, n: int = 9) -> list[str]:
    """``n`` evenly spaced colours of a colormap as '#rrggbb', for a CSS gradient legend."""
    lut = colormap_lut(name)
    idx = np.rint(np.linspace(0, 255, n)).astype(int)
    return ["#{:02x}{:02x}{:02x}".format(*lut[i]) for i in idx]


def overlay_rgba(fractions: np.ndarray, *, cmap: str = "viridis") -> np.ndarray:
    """Fraction map in [0, 1] -> (H, W, 4) uint8: colour by fraction, opaque where > 0, clear at 0."""
    f = np.asarray(fractions, dtype=np.float32)
    if f.ndim != 2:
        raise RenderError(f"a fraction map is 2-D, got shape {f.shape}")
    f = np.where(np.isfinite(f), np.clip(f, 0.0, 1.0), 0.0)
    lut = colormap_lut(cmap)
    out = np.empty(f.shape + (4,), np.uint8)
    out[..., :3] = lut[np.rint(f * 255.0).astype(np.intp)]
    out[..., 3] = np.where(f > 0, 255, 0).astype(np.uint8)
    return out


# --- output ---------------------------------------------------------------------------------------------
def downscale(pixels: np.ndarray, max_size: int, *, smooth: bool = True) -> np.ndarray:
    """Shrink so the longer side is at most ``max_size`` px (never enlarges). ``smooth=False`` keeps
    exact values (nearest neighbour), as masks need."""
    arr = np.asarray(pixels)
    height, width = arr.shape[:2]
    if max_size < 1:
        raise RenderError(f"size must be at least 1 px, got {max_size}")
    if max(height, width) <= max_size:
        return arr
    scale = max_size / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(arr).resize(size, resample))


def render_image(*, rgb: np.ndarray, bands: BandData | None = None, band: str | int | None = None,
                 kind: str = DEFAULT_STRETCH, low_pct: float = DEFAULT_CLIP[0],
                 high_pct: float = DEFAULT_CLIP[1]) -> np.ndarray:
    """The grey picture of an image: the band data when given (one band or their mean), else the luma of
    ``rgb``; clipped and stretched. Returns (H, W) uint8."""
    plane = bands.plane(band) if bands is not None else luminance(rgb)
    return to_uint8(stretch(plane, kind=kind, low_pct=low_pct, high_pct=high_pct))
