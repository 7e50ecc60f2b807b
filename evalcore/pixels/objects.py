"""Objects in one image plane: the sky, the galaxy's own region, and foreground stars (no Django).

Works on a linear plane (one band, or any brightness plane) in any units. The sky level and noise are
robust (median and MAD of the whole plane), so a galaxy filling a good part of the frame does not bias
them much. The galaxy is the detected region (smoothed plane above ``threshold`` sky sigmas) that holds
the brightest smoothed pixel of the central half of the frame, as in a cutout centred on its galaxy.

Stars are compact, PSF-like peaks away from the galaxy centre: a local maximum whose half-maximum area
above its local background (the median of an annulus around it) is no wider than ``max_fwhm_ratio`` times
the PSF's, and at least ``min_snr`` sky sigmas high. The PSF width is given, or taken from the image itself
as the median width of the most compact third of its significant peaks. Each star is masked out to the
radius where a Gaussian PSF of its height falls to two sky sigmas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

GALAXY_THRESHOLD = 1.5  # sky sigmas: SExtractor's default detection threshold


@dataclass(frozen=True)
class Sky:
    level: float   # the plane's units
    sigma: float   # the plane's units (MAD, scaled to a Gaussian sigma)


@dataclass(frozen=True)
class Star:
    row: float            # px
    col: float            # px
    fwhm_px: float        # half-maximum width of the peak above its local background
    snr: float            # peak height over the sky sigma
    radius_px: float      # radius of its masked disc


@dataclass
class StarMask:
    mask: np.ndarray                   # (H, W) bool: pixels lit by a foreground star
    stars: list[Star] = field(default_factory=list)
    psf_fwhm_px: float = float("nan")  # the PSF width used (given or estimated)
    galaxy_centre: tuple[float, float] = (float("nan"), float("nan"))  # (row, col) px


def _finite_plane(plane) -> np.ndarray:
    arr = np.asarray(plane, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D plane, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.any():
        raise ValueError("the plane has no finite pixel")
    return np.where(finite, arr, np.median(arr[finite]))


def sky(plane) -> Sky:
    """Median and MAD-based sigma of the plane (its units)."""
    arr = _finite_plane(plane)
    level = float(np.median(arr))
    return Sky(level=level, sigma=float(1.4826 * np.median(np.abs(arr - level))))


def galaxy_peak(plane) -> tuple[int, int]:
    """(row, col) of the brightest pixel of the 1 px smoothed plane within the central half of the frame."""
    arr = _finite_plane(plane)
    h, w = arr.shape
    smooth = ndimage.gaussian_filter(arr, 1.0)
    r0, c0 = h // 4, w // 4
    core = smooth[r0:h - r0, c0:w - c0]
    r, c = np.unravel_index(np.argmax(core), core.shape)
    return int(r + r0), int(c + c0)


def galaxy_region(plane, threshold: float = GALAXY_THRESHOLD) -> np.ndarray:
    """(H, W) bool: the connected region of the 1 px smoothed plane above sky + ``threshold`` sigmas that
    holds the galaxy's peak (:func:`galaxy_peak`). All False when the peak itself is not above it."""
    arr = _finite_plane(plane)
    s = sky(arr)
    smooth = ndimage.gaussian_filter(arr, 1.0)
    labels, _ = ndimage.label(smooth > s.level + threshold * max(s.sigma, 1e-300))
    r, c = galaxy_peak(arr)
    label = labels[r, c]
    return labels == label if label else np.zeros(arr.shape, bool)


def _peak_fwhm(arr: np.ndarray, r: int, c: int, half_box: int) -> tuple[float, float]:
    """(FWHM px, height) of the peak at (r, c) above the median of the box's border (its local background):
    the connected area at or above half its height, as a circle's diameter."""
    h, w = arr.shape
    r0, r1, c0, c1 = max(0, r - half_box), min(h, r + half_box + 1), max(0, c - half_box), min(w, c + half_box + 1)
    box = arr[r0:r1, c0:c1]
    border = np.concatenate([box[0], box[-1], box[:, 0], box[:, -1]])
    height = float(arr[r, c] - np.median(border))
    if height <= 0:
        return float("inf"), height
    labels, _ = ndimage.label(box >= np.median(border) + 0.5 * height)
    area = int((labels == labels[r - r0, c - c0]).sum())
    return float(2.0 * np.sqrt(area / np.pi)), height


def find_stars(plane, *, psf_fwhm_px: float | None = None, min_snr: float = 10.0, max_fwhm_ratio: float = 1.5,
               centre_exclusion: float = 3.0) -> StarMask:
    """The foreground stars of a linear plane (row 0 at the top; any frame) and a mask of their light.

    ``psf_fwhm_px``: the PSF's FWHM in px, estimated from the image when None. ``centre_exclusion``: peaks
    closer to the galaxy's peak than this many PSF widths are the galaxy's own, never stars.
    Raises ValueError for a plane that is not 2-D or has no finite pixel.
    """
    arr = _finite_plane(plane)
    h, w = arr.shape
    s = sky(arr)
    sigma = max(s.sigma, 1e-300)
    smooth = ndimage.gaussian_filter(arr, 0.7)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=5)) & (smooth > s.level + min_snr * sigma)
    rows, cols = np.nonzero(peaks)
    half_box = max(4, int(round(min(h, w) / 16)))
    measured = []
    for r, c in zip(rows, cols):
        fwhm, height = _peak_fwhm(smooth, int(r), int(c), half_box)
        if np.isfinite(fwhm) and height / sigma >= min_snr:
            measured.append((int(r), int(c), fwhm, height / sigma))
    if psf_fwhm_px is None:
        widths = np.sort([m[2] for m in measured])
        psf_fwhm_px = float(np.median(widths[: max(1, len(widths) // 3)])) if len(widths) else float("nan")
        psf_fwhm_px = max(psf_fwhm_px, 1.5) if np.isfinite(psf_fwhm_px) else float("nan")
    g_row, g_col = galaxy_peak(arr)
    mask = np.zeros((h, w), bool)
    stars = []
    if not np.isfinite(psf_fwhm_px):
        return StarMask(mask=mask, stars=stars, psf_fwhm_px=psf_fwhm_px, galaxy_centre=(g_row, g_col))
    yy, xx = np.mgrid[0:h, 0:w]
    psf_sigma = psf_fwhm_px / 2.3548
    for r, c, fwhm, snr in measured:
        if np.hypot(r - g_row, c - g_col) < centre_exclusion * psf_fwhm_px or fwhm > max_fwhm_ratio * psf_fwhm_px:
            continue
        radius = float(max(psf_fwhm_px, psf_sigma * np.sqrt(2.0 * np.log(max(snr / 2.0, 1.0))) + 1.0))
        mask |= (yy - r) ** 2 + (xx - c) ** 2 <= radius ** 2
        stars.append(Star(row=float(r), col=float(c), fwhm_px=float(fwhm), snr=float(snr), radius_px=radius))
    return StarMask(mask=mask, stars=stars, psf_fwhm_px=float(psf_fwhm_px), galaxy_centre=(g_row, g_col))
