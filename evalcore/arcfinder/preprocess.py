"""Preprocessing: median filter, centre and ellipse of the light, crop/deproject/resize, unsharp mask.

The standardised grid (``params.resize`` px square) is tied to the input by one affine map, kept in
:class:`Geometry`, so clusters found on the grid are reprojected exactly to the input frame.
Coordinates: (row, col) in px, row 0 = the first row of the input array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import ArcFinderParams


@dataclass(frozen=True)
class Geometry:
    """How the standardised grid maps to the input image.

    ``input (row, col) = matrix @ grid (row, col) + offset``. Ellipse values are of the input's light.
    """
    matrix: np.ndarray            # 2x2
    offset: np.ndarray            # 2
    centre_row: float             # px of the input
    centre_col: float
    axis_ratio: float             # minor / major of the light's second moments
    major_axis_angle: float       # deg, counter-clockwise from the +col axis with rows pointing down
    major_sigma: float            # px of the input: sqrt of the larger eigenvalue of the moments
    crop_radius: float            # px of the input

    def as_dict(self) -> dict:
        return {"centre_row": self.centre_row, "centre_col": self.centre_col, "axis_ratio": self.axis_ratio,
                "major_axis_angle_deg": self.major_axis_angle, "major_sigma_px": self.major_sigma,
                "crop_radius_px": self.crop_radius}


@dataclass(frozen=True)
class Standardised:
    image: np.ndarray        # unsharp-masked, [0, 1], the orientation field reads this
    plain: np.ndarray        # before unsharp masking, [0, 1]: weights of the log-spiral fits
    geometry: Geometry
    grid_centre: tuple[float, float]  # (row, col) of the galaxy centre on the grid


def clean_plane(plane: np.ndarray, params: ArcFinderParams) -> np.ndarray:
    """Validate, fill NaNs, median filter and scale to [0, 1]. Raises ArcFinderError on unusable input."""
    if plane.ndim != 2:
        raise ArcFinderError(f"expected a 2-D plane, got shape {plane.shape}")
    h, w = plane.shape
    if min(h, w) < params.min_size:
        raise ArcFinderError(f"image is {w}x{h} px; the arc finder needs at least {params.min_size} px a side")
    if h * w > params.max_pixels:
        raise ArcFinderError(f"image is {w}x{h} px, more than the {params.max_pixels} px the arc finder takes; "
                             "crop or bin it first")
    finite = np.isfinite(plane)
    if not finite.any():
        raise ArcFinderError("image has no finite pixel (all NaN or infinite)")
    out = np.where(finite, plane, np.median(plane[finite]))
    if params.median_filter_radius > 0:
        out = ndimage.median_filter(out, size=2 * params.median_filter_radius + 1, mode="nearest")
    lo, hi = float(out.min()), float(out.max())
    if not hi > lo:
        raise ArcFinderError("image is blank (all pixels equal after the median filter)")
    return (out - lo) / (hi - lo)


ISOPHOTE_FRACTION = 0.2
# second moment of a 2-D Gaussian cut at ISOPHOTE_FRACTION of its peak, over sigma^2:
# (1 - (1 + L) f) / (1 - f) with L = ln(1 / f)
TRUNCATION = (1 - (1 + np.log(1 / ISOPHOTE_FRACTION)) * ISOPHOTE_FRACTION) / (1 - ISOPHOTE_FRACTION)


def light_ellipse(img: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Centre (row, col) and 2x2 covariance (px^2) of the galaxy's light, as a 2-D Gaussian would give.

    The light-weighted moments inside the isophote at 20 % of the (1 px smoothed, background-subtracted)
    peak, the connected piece around the central peak only (stars and neighbours elsewhere are ignored),
    scaled up for the cut-off tails so a Gaussian galaxy gives its own covariance. Falls back to
    :func:`windowed_ellipse` when that piece is too small to measure (< 5 px).
    """
    h, w = img.shape
    bg = np.median(img)
    smooth = ndimage.gaussian_filter(img, 1.0) - bg
    cr0, cc0 = h // 4, w // 4
    core = smooth[cr0:h - cr0, cc0:w - cc0]
    pr, pc = np.unravel_index(np.argmax(core), core.shape)
    pr, pc = pr + cr0, pc + cc0
    peak = smooth[pr, pc]
    if peak <= 0:
        return windowed_ellipse(img)
    pieces, _ = ndimage.label(smooth > ISOPHOTE_FRACTION * peak)
    inside = pieces == pieces[pr, pc]
    if inside.sum() < 5:
        return windowed_ellipse(img)
    rows, cols = np.nonzero(inside)
    wgt = smooth[rows, cols]
    total = wgt.sum()
    cy, cx = (wgt * rows).sum() / total, (wgt * cols).sum() / total
    dy, dx = rows - cy, cols - cx
    cov = np.array([[(wgt * dy * dy).sum(), (wgt * dy * dx).sum()],
                    [(wgt * dy * dx).sum(), (wgt * dx * dx).sum()]]) / total / TRUNCATION
    if not np.all(np.isfinite(cov)) or np.linalg.eigvalsh(cov)[0] <= 0:
        return windowed_ellipse(img)
    return float(cy), float(cx), cov


def windowed_ellipse(img: np.ndarray, iterations: int = 8) -> tuple[float, float, np.ndarray]:
    """Centre (row, col) and 2x2 covariance (px^2) of the galaxy light, by iterated Gaussian-windowed
    moments of the background-subtracted image: each pass weights the light by the Gaussian of the
    previous pass (twice as wide), which converges on the brightest extended object and ignores the
    far background and stars near the edges (an approximation of SpArcFiRe's 2-D Gaussian fit)."""
    h, w = img.shape
    bg = np.median(img)
    noise = 1.4826 * np.median(np.abs(img - bg)) or 1e-6
    light = np.clip(img - bg - 2.0 * noise, 0, None)
    if not light.any():
        light = np.clip(img - bg, 0, None)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    smooth = ndimage.gaussian_filter(light, 2.0)
    # Start at the brightest smoothed peak within the central half: galaxies are centred in cutouts.
    cr0, cc0 = h / 4, w / 4
    core = smooth[int(cr0):int(h - cr0), int(cc0):int(w - cc0)]
    pr, pc = np.unravel_index(np.argmax(core), core.shape)
    cy, cx = pr + int(cr0), pc + int(cc0)
    cov = np.diag([(min(h, w) / 4.0) ** 2] * 2)
    for _ in range(iterations):
        inv = np.linalg.inv(cov * 4.0)
        dy, dx = rows - cy, cols - cx
        m = inv[0, 0] * dy * dy + 2 * inv[0, 1] * dy * dx + inv[1, 1] * dx * dx
        wgt = light * np.exp(-0.5 * m)
        total = wgt.sum()
        if total <= 0:
            break
        cy, cx = (wgt * rows).sum() / total, (wgt * cols).sum() / total
        dy, dx = rows - cy, cols - cx
        new = np.array([[(wgt * dy * dy).sum(), (wgt * dy * dx).sum()],
                        [(wgt * dy * dx).sum(), (wgt * dx * dx).sum()]]) / total
        # the window narrows the measured spread; undo it for a Gaussian (1/s^2 = 1/s_obs^2 - 1/s_win^2)
        try:
            new = np.linalg.inv(np.linalg.inv(new) - inv)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(new)) or np.any(np.linalg.eigvalsh(new) <= 0.25):
            break
        cov = new
    return float(cy), float(cx), cov


def _light_ellipse_binned(img: np.ndarray, max_side: int = 512) -> tuple[float, float, np.ndarray]:
    """light_ellipse on a block-averaged copy of large images (the ellipse needs no more than ~512 px)."""
    f = int(np.ceil(max(img.shape) / max_side))
    if f <= 1:
        return light_ellipse(img)
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    binned = img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    cy, cx, cov = light_ellipse(binned)
    return cy * f + (f - 1) / 2, cx * f + (f - 1) / 2, cov * f * f


def standardise(img: np.ndarray, params: ArcFinderParams) -> Standardised:
    """Cleaned [0, 1] plane -> the square grid the method works on, with the map back to the input."""
    h, w = img.shape
    n = params.resize
    if params.standardize:
        cy, cx, cov = _light_ellipse_binned(img)
        evals, evecs = np.linalg.eigh(cov)
        minor_var, major_var = max(evals[0], 1e-6), max(evals[1], 1e-6)
        major = evecs[:, 1]  # (drow, dcol)
        q = float(np.sqrt(minor_var / major_var))
        sigma = float(np.sqrt(major_var))
        radius = max(params.crop_sigmas * sigma, params.min_crop_radius)
        radius = min(radius, 0.5 * np.hypot(h, w))
    else:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        major, q, sigma = np.array([0.0, 1.0]), 1.0, float("nan")
        radius = max(h, w) / 2.0
    angle = float(np.degrees(np.arctan2(-major[0], major[1])))
    scale = 2.0 * radius / n  # input px per grid px
    if params.standardize and params.deproject:
        # grid columns run along the major axis, rows along the minor one, compressed by q on the sky
        minor = np.array([major[1], -major[0]])
        matrix = np.column_stack([minor * q, major]) * scale
    else:
        matrix = np.eye(2) * scale
    gc = (n - 1) / 2.0
    offset = np.array([cy, cx]) - matrix @ np.array([gc, gc])
    plain_src = img
    if scale > 1.5:  # shrinking: smooth first so the grid does not alias
        plain_src = ndimage.gaussian_filter(img, 0.5 * scale)
    background = float(np.median(img))
    plain = ndimage.affine_transform(plain_src, matrix, offset=offset, output_shape=(n, n), order=1,
                                     mode="constant", cval=background)
    lo, hi = plain.min(), np.percentile(plain, params.white_percentile)
    plain = np.clip((plain - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(plain)
    blurred = ndimage.gaussian_filter(plain, params.unsharp_sigma, mode="nearest")
    usm = plain + params.unsharp_amount * (plain - blurred)
    # clipped, not rescaled: the bright core saturates into a flat plateau (no ridges there), as in
    # SpArcFiRe's preprocessed images, and the disk keeps the contrast the unsharp mask gave it
    usm = np.clip(usm, 0.0, 1.0)
    geometry = Geometry(matrix=matrix, offset=offset, centre_row=float(cy), centre_col=float(cx),
                        axis_ratio=q, major_axis_angle=angle, major_sigma=sigma, crop_radius=float(radius))
    return Standardised(image=usm, plain=plain, geometry=geometry, grid_centre=(gc, gc))


def to_input_frame(labels: np.ndarray, geometry: Geometry, shape: tuple[int, int]) -> np.ndarray:
    """Reproject a label map on the grid to the input's (H, W) frame (nearest label, 0 outside)."""
    inv = np.linalg.inv(geometry.matrix)
    return ndimage.affine_transform(labels, inv, offset=-inv @ geometry.offset, output_shape=shape, order=0,
                                    mode="constant", cval=0).astype(labels.dtype)
