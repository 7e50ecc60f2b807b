"""Which pixels the arc finder reads: one [0, 1] plane, from a single band, a g,r,z cube or an RGB picture.

- 2-D array (a single-band FITS image, linear): SpArcFiRe's own FITS conversion (its ``-convert-FITS``
  step, default ``-p 0.25 0.75 2``), see :func:`fits_scaling`.
- (3, H, W) cube of band fluxes (g, r, z): the band ``params.band``, converted the same way.
- (H, W, 3) RGB picture (uint8 0-255 or float 0-1): already stretched for display (Legacy Survey asinh,
  see ``evalcore.pixels.colour``), so only the plane is chosen: Rec. 601 luminance (0.299 R + 0.587 G +
  0.114 B, as MATLAB's ``rgb2gray`` that SpArcFiRe applies to colour pictures) or one channel.
"""
from __future__ import annotations

import numpy as np

from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import ArcFinderParams
from evalcore.pixels.objects import galaxy_region

CUBE_BANDS = ("g", "r", "z")
RGB_CHANNELS = {"red": 0, "green": 1, "blue": 2}


def _zero_constant_lines(flux: np.ndarray) -> np.ndarray:
    """Rows and columns that hold one value throughout (padding off the survey's edge) -> 0."""
    out = flux.copy()
    out[np.all(flux == flux[:, :1], axis=1), :] = 0
    out[:, np.all(flux == flux[:1, :], axis=0)] = 0
    return out


def fits_scaling(flux: np.ndarray, params: ArcFinderParams) -> np.ndarray:
    """SpArcFiRe's conversion of a linear band to a [0, 1] plane (any flux units; NaNs count as 0).

    Constant rows and columns (padding) and negative pixels become 0; then ``fits_asinh_repeats`` times:
    subtract the ``fits_black_quantile`` quantile of the originally non-zero pixels (the black level),
    apply ``beta * asinh(x / beta)`` with ``beta`` the ``fits_asinh_quantile`` quantile of the galaxy's
    non-zero pixels, divide by their maximum and clip at 1. The galaxy's region is the detected region
    around the central peak (``evalcore.pixels.objects.galaxy_region``, 1.5 sky sigmas), the part of the
    image SpArcFiRe's star mask marks as the galaxy; without it, all non-zero pixels.
    The result is quantised to 1/255, as SpArcFiRe reads it back from an 8-bit PNG.
    """
    flux = np.where(np.isfinite(flux), flux, 0.0).astype(np.float64)
    img = np.clip(_zero_constant_lines(flux), 0.0, None)
    nonzero = img != 0
    if not nonzero.any():
        return img
    region = galaxy_region(flux) & nonzero
    include = region if region.sum() >= 5 else nonzero
    for _ in range(params.fits_asinh_repeats):
        img = np.maximum(img - np.quantile(img[nonzero], params.fits_black_quantile), 0.0)
        beta = float(np.quantile(img[include], params.fits_asinh_quantile))
        if beta <= 0:
            beta = float(img[include].max()) or 1.0
        img = beta * np.arcsinh(img / beta)
        top = float(img[include].max())
        if top <= 0:
            return np.zeros_like(img)
        img = np.minimum(img / top, 1.0)
    return np.round(img * 255.0) / 255.0


def detection_plane(image, params: ArcFinderParams) -> np.ndarray:
    """The linear plane the galaxy is detected on (its region, for the crop): the band itself for band data,
    the luminance of an RGB picture. Call after :func:`to_plane` accepted the input."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
        return arr[CUBE_BANDS.index(params.band)]
    return to_plane(image, params)[0]


def to_plane(image, params: ArcFinderParams) -> tuple[np.ndarray, str]:
    """Any accepted input -> (float64 (H, W) plane in [0, 1], description of what was read).

    Raises ArcFinderError for shapes that are none of the accepted ones.
    """
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ArcFinderError(f"image must be numeric, got dtype {arr.dtype}")
    if arr.ndim in (2, 3) and arr.size and not np.isfinite(arr).any():
        raise ArcFinderError("image has no finite pixel (all NaN or infinite)")
    if arr.ndim == 2:
        return fits_scaling(arr.astype(np.float64), params), "single band, SpArcFiRe's FITS conversion"
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
        if params.band not in CUBE_BANDS:
            raise ArcFinderError(f"band {params.band!r} is not one of {CUBE_BANDS}")
        plane = arr[CUBE_BANDS.index(params.band)].astype(np.float64)
        return fits_scaling(plane, params), f"{params.band} band of g,r,z, SpArcFiRe's FITS conversion"
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3].astype(np.float64)
        if arr.dtype == np.uint8:
            rgb /= 255.0
        rgb = np.clip(np.where(np.isfinite(rgb), rgb, 0.0), 0.0, 1.0)
        if params.rgb_mode == "luminance":
            return rgb @ np.array([0.299, 0.587, 0.114]), "RGB luminance (Rec. 601)"
        if params.rgb_mode in RGB_CHANNELS:
            return rgb[..., RGB_CHANNELS[params.rgb_mode]], f"RGB {params.rgb_mode} channel"
        raise ArcFinderError(f"rgb_mode {params.rgb_mode!r} is not 'luminance' or one of {sorted(RGB_CHANNELS)}")
    raise ArcFinderError(
        f"image shape {arr.shape} is none of (H, W), (3, H, W) g,r,z or (H, W, 3) RGB"
    )
