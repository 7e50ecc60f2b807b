"""Which pixels the arc finder reads: one 2-D plane, from a single band, a g,r,z cube or an RGB picture.

- 2-D array (a single-band FITS image): read as is (linear), NaNs allowed where some pixels are valid.
- (3, H, W) cube of band fluxes (g, r, z): the band ``params.band`` with an asinh brightness scaling,
  ``asinh(f / (softening * noise))``, where ``noise`` is the robust (MAD) sky noise of that band. This is
  the scaling SpArcFiRe applies to survey fluxes before it looks for arcs: linear near the noise, logarithmic
  in bright parts, so faint arms are not lost under the bulge.
- (H, W, 3) RGB picture (uint8 0-255 or float 0-1): already stretched for display (Legacy Survey asinh,
  see ``evalcore.formats.imaging``), so only the plane is chosen: Rec. 601 luminance (0.299 R + 0.587 G +
  0.114 B) or one channel; no second stretch.
"""
from __future__ import annotations

import numpy as np

from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import ArcFinderParams

CUBE_BANDS = ("g", "r", "z")
RGB_CHANNELS = {"red": 0, "green": 1, "blue": 2}


def robust_noise(values: np.ndarray) -> float:
    """Sky noise from the median absolute deviation (same units as ``values``)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(finite - np.median(finite))))


def asinh_scale(flux: np.ndarray, softening: float) -> np.ndarray:
    """asinh(flux / (softening * noise)); linear below the noise, logarithmic above. NaNs pass through."""
    noise = robust_noise(flux)
    if noise <= 0:
        finite = flux[np.isfinite(flux)]
        noise = float(np.std(finite)) if finite.size else 0.0
    if noise <= 0:
        return np.zeros_like(flux)
    return np.arcsinh(flux / (softening * noise))


def to_plane(image, params: ArcFinderParams) -> tuple[np.ndarray, str]:
    """Any accepted input -> (float64 (H, W) plane, description of what was read).

    Raises ArcFinderError for shapes that are none of the accepted ones.
    """
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ArcFinderError(f"image must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 2:
        return arr.astype(np.float64), "single band, linear"
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
        if params.band not in CUBE_BANDS:
            raise ArcFinderError(f"band {params.band!r} is not one of {CUBE_BANDS}")
        plane = arr[CUBE_BANDS.index(params.band)].astype(np.float64)
        return asinh_scale(plane, params.asinh_softening), f"{params.band} band of g,r,z, asinh"
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3].astype(np.float64)
        if arr.dtype == np.uint8:
            rgb /= 255.0
        if params.rgb_mode == "luminance":
            return rgb @ np.array([0.299, 0.587, 0.114]), "RGB luminance (Rec. 601)"
        if params.rgb_mode in RGB_CHANNELS:
            return rgb[..., RGB_CHANNELS[params.rgb_mode]], f"RGB {params.rgb_mode} channel"
        raise ArcFinderError(f"rgb_mode {params.rgb_mode!r} is not 'luminance' or one of {sorted(RGB_CHANNELS)}")
    raise ArcFinderError(
        f"image shape {arr.shape} is none of (H, W), (3, H, W) g,r,z or (H, W, 3) RGB"
    )
