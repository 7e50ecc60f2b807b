"""Band data as the RGB pictures people see and models read (no Django).

Colour convention: the DESI Legacy Surveys' g,r,z -> RGB mapping (as in their cutout service and the
colour JPEGs the reference study trained on). Fluxes in nanomaggies; each band is scaled, offset by ``m``,
and all three share one arcsinh stretch of their mean intensity ``I``:

    x_b = max(0, flux_b * scale_b + m),  I = mean_b(x_b),  out_b = clip(x_b * asinh(Q I) / (sqrt(Q) I), 0, 1)

with g -> blue (scale 6.0), r -> green (3.4), z -> red (2.2), m = 0.03, Q = 20; an i band (g,r,i cubes)
takes z's place in red (scale 2.75). A single band has no known
zero point: it is clipped at percentiles and given the display asinh stretch of ``evalcore.pixels.rendering``.
Row 0 of every array is north (top), east to the left, as on the sky.
"""
from __future__ import annotations

import numpy as np

from evalcore.pixels import rendering

LEGACY_SURVEY_RGB = {"g": (2, 6.0), "r": (1, 3.4), "i": (0, 2.75), "z": (0, 2.2)}  # band -> (RGB plane, scale)
LEGACY_SURVEY_M = 0.03
LEGACY_SURVEY_Q = 20.0
LEGACY_SURVEY_PIXEL_SCALE = 0.262  # arcsec / px


def grz_to_rgb(cube: np.ndarray, bands: tuple[str, ...] = ("g", "r", "z"), m: float = LEGACY_SURVEY_M,
               q: float = LEGACY_SURVEY_Q) -> np.ndarray:
    """(n_bands, H, W) fluxes in nanomaggies -> (H, W, 3) uint8 RGB, Legacy Survey convention."""
    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 3 or cube.shape[0] != len(bands):
        raise ValueError(f"expected a ({len(bands)}, H, W) cube for bands {bands}, got shape {cube.shape}")
    unknown = [b for b in bands if b not in LEGACY_SURVEY_RGB]
    if unknown:
        raise ValueError(f"no colour for band(s) {unknown}; known: {sorted(LEGACY_SURVEY_RGB)}")
    if not np.all(np.isfinite(cube)):
        raise ValueError("band data contain NaN or infinite pixels")
    scaled = {b: np.maximum(0.0, cube[i] * LEGACY_SURVEY_RGB[b][1] + m) for i, b in enumerate(bands)}
    intensity = sum(scaled.values()) / len(bands)
    intensity = np.where(intensity == 0, 1e-6, intensity)
    stretch = np.arcsinh(q * intensity) / (np.sqrt(q) * intensity)
    rgb = np.zeros(cube.shape[1:] + (3,), np.float32)
    for b, x in scaled.items():
        rgb[..., LEGACY_SURVEY_RGB[b][0]] = np.clip(x * stretch, 0.0, 1.0)
    return np.rint(rgb * 255).astype(np.uint8)


# --- SDSS g,r,i composites ----------------------------------------------------------------------------
SDSS_LUPTON_SCALES = {"g": 1.8, "r": 1.2, "i": 1.0}  # i -> red, r -> green, g -> blue
SDSS_LUPTON_STRETCH = 0.08
SDSS_LUPTON_Q = 8.0


def gri_to_rgb(cube: np.ndarray) -> np.ndarray:
    """(3, H, W) g, r, i fluxes in nanomaggies -> (H, W, 3) uint8 RGB: the Lupton et al. (2004) asinh
    composite SDSS colour images are made with (astropy's ``make_lupton_rgb``), i -> red, r -> green,
    g -> blue, scaled by ``SDSS_LUPTON_SCALES``."""
    from astropy.visualization import make_lupton_rgb

    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 3 or cube.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) g,r,i cube, got shape {cube.shape}")
    if not np.all(np.isfinite(cube)):
        raise ValueError("band data contain NaN or infinite pixels")
    g, r, i = (cube[k] * SDSS_LUPTON_SCALES[b] for k, b in enumerate("gri"))
    return np.ascontiguousarray(make_lupton_rgb(i, r, g, minimum=0.0, stretch=SDSS_LUPTON_STRETCH,
                                                Q=SDSS_LUPTON_Q))


# --- single bands -----------------------------------------------------------------------------------
MONO_CLIP_PERCENTILES = (0.5, 99.5)


def mono_to_rgb(plane: np.ndarray, percentiles: tuple[float, float] = MONO_CLIP_PERCENTILES) -> np.ndarray:
    """(H, W) band data in any flux unit -> (H, W, 3) uint8 grey RGB.

    A single band has no known zero point, so the stretch is relative: the display asinh stretch of
    ``rendering.stretch`` between the given percentiles. A flat image becomes black rather than failing.
    """
    plane = np.asarray(plane, dtype=np.float32)
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) band, got shape {plane.shape}")
    if not np.all(np.isfinite(plane)):
        raise ValueError("band data contain NaN or infinite pixels")
    grey = rendering.to_uint8(rendering.stretch(plane, kind="asinh", low_pct=percentiles[0], high_pct=percentiles[1]))
    return np.repeat(grey[..., None], 3, axis=2)
