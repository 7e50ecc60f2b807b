"""Preprocessing: median filter, SpArcFiRe's Gaussian fit of the light, crop/deproject/resize, unsharp mask.

The standardised grid (``params.resize`` px square) is tied to the input by one affine map, kept in
:class:`Geometry`, so clusters found on the grid are reprojected exactly to the input frame.
Coordinates: (row, col) in px, row 0 = the first row of the input array.

The centre and ellipse come from SpArcFiRe's iterated Gaussian fit (its ``iterFitGauss``): each pass
weights the pixels by the current Gaussian's likelihood and takes their weighted mean and covariance.
First the centre: mean and covariance together until the mean moves less than 0.02 px (it climbs to the
brightest peak near the light's centroid). Then, with the centre fixed, the covariance again from the
whole image's second moments, stopped where the weighted sum of the pixels stops accelerating (its
second difference turns back up while between -0.005 and 0). The crop radius is half the major axis of
the fitted Gaussian's likelihood contour at 1e-9 (rounded up). A bright bulge or bar draws the fit's
Gaussian narrow, but the 1e-9 contour lies far out (about 5-6 sigma), so the crop still holds the disk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.params import ArcFinderParams

LIKELIHOOD_CUTOFF = 1e-9       # SpArcFiRe's ellipse contour (probability density per px^2)
CENTRE_TOLERANCE = 0.02        # px: the centre search stops when the mean moves less than this
MAX_CENTRE_PASSES = 100
MAX_COVARIANCE_PASSES = 25
CENTRE_DRIFT_FOR_STAR_MASK = 2.5   # px from the frame's centre: refit without the stars (ctrDriftThresForStarMask)
LOW_RESOLUTION_MINOR_AXIS = 40.0   # px: SpArcFiRe warns below this minor-axis length


@dataclass(frozen=True)
class Geometry:
    """How the standardised grid maps to the input image.

    ``input (row, col) = matrix @ grid (row, col) + offset``. Ellipse values are of the input's light.
    """
    matrix: np.ndarray            # 2x2
    offset: np.ndarray            # 2
    centre_row: float             # px of the input
    centre_col: float
    axis_ratio: float             # minor / major of the fitted Gaussian
    major_axis_angle: float       # deg, counter-clockwise from the +col axis as displayed (rows pointing down)
    major_sigma: float            # px of the input: sqrt of the larger eigenvalue of the fitted covariance
    crop_radius: float            # px of the input

    def share_inside(self, mask: np.ndarray, n: int = 256) -> float:
        """Share of a mask's pixels (input frame) that the n x n grid covers, i.e. inside the crop; NaN
        for an empty mask."""
        rows, cols = np.nonzero(mask)
        if not len(rows):
            return float("nan")
        grid = np.linalg.inv(self.matrix) @ (np.vstack([rows, cols]) - self.offset[:, None])
        return float(((grid >= -0.5) & (grid <= n - 0.5)).all(axis=0).mean())

    def as_dict(self) -> dict:
        return {"centre_row": self.centre_row, "centre_col": self.centre_col, "axis_ratio": self.axis_ratio,
                "major_axis_angle_deg": self.major_axis_angle, "major_sigma_px": self.major_sigma,
                "crop_radius_px": self.crop_radius}


@dataclass(frozen=True)
class Standardised:
    image: np.ndarray        # unsharp-masked, [0, 1], 0 outside the input's frame: the orientation field reads this
    plain: np.ndarray        # before unsharp masking, [0, 1]: weights of the log-spiral fits
    geometry: Geometry
    grid_centre: tuple[float, float]  # (row, col) of the galaxy centre on the grid
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EllipseFit:
    centre_row: float
    centre_col: float
    covariance: np.ndarray    # 2x2, px^2, (row, col)
    converged: bool
    passes: int               # covariance passes until convergence


def clean_plane(plane: np.ndarray, params: ArcFinderParams) -> np.ndarray:
    """Validate, fill NaNs and median filter a [0, 1] plane. Raises ArcFinderError on unusable input."""
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
    if not out.max() > out.min():
        raise ArcFinderError("image is blank (all pixels equal after the median filter)")
    return np.clip(out, 0.0, 1.0)


def _gaussian_density(shape: tuple[int, int], centre: np.ndarray, cov: np.ndarray) -> np.ndarray:
    h, w = shape
    inv = np.linalg.inv(cov)
    dr = np.arange(h, dtype=np.float64)[:, None] - centre[0]
    dc = np.arange(w, dtype=np.float64)[None, :] - centre[1]
    m = inv[0, 0] * dr * dr + 2.0 * inv[0, 1] * dr * dc + inv[1, 1] * dc * dc
    return np.exp(-0.5 * m) / (2.0 * math.pi * math.sqrt(np.linalg.det(cov)))


def _moments(weights: np.ndarray, centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    h, w = weights.shape
    total = weights.sum()
    rows = np.arange(h, dtype=np.float64)[:, None]
    cols = np.arange(w, dtype=np.float64)[None, :]
    if centre is None:
        centre = np.array([(weights * rows).sum() / total, (weights * cols).sum() / total])
    dr, dc = rows - centre[0], cols - centre[1]
    cov = np.array([[(weights * dr * dr).sum(), (weights * dr * dc).sum()],
                    [(weights * dr * dc).sum(), (weights * dc * dc).sum()]]) / total
    return centre, cov


def _usable(cov: np.ndarray) -> bool:
    """A covariance the next pass can use: finite, and at least a tenth of a pixel across both ways."""
    return bool(np.all(np.isfinite(cov)) and np.linalg.eigvalsh(cov)[0] > 0.01)


def gaussian_fit(img: np.ndarray) -> EllipseFit:
    """SpArcFiRe's two-stage iterated Gaussian fit of an image's light (see the module docstring).
    Raises ArcFinderError when the image has no light to fit."""
    if not img.sum() > 0:
        raise ArcFinderError("image has no light above the black level to fit the galaxy's ellipse to")
    tiny = np.finfo(np.float64).eps * np.eye(2)
    centre, cov = _moments(img)
    for _ in range(MAX_CENTRE_PASSES):
        weights = img * _gaussian_density(img.shape, centre, cov + tiny)
        if not weights.sum() > 0:
            break
        new_centre, new_cov = _moments(weights)
        if not _usable(new_cov):  # no galaxy: the weights collapsed onto one noise pixel
            break
        moved = math.hypot(*(new_centre - centre))
        centre, cov = new_centre, new_cov
        if moved < CENTRE_TOLERANCE:
            break
    _, cov = _moments(img, centre)
    sums: list[float] = []
    for passes in range(1, MAX_COVARIANCE_PASSES + 1):
        weights = img * _gaussian_density(img.shape, centre, cov + tiny)
        sums.append(float(weights.sum()))
        if passes > 3:
            d2 = sums[-1] - 2 * sums[-2] + sums[-3]
            d2_before = sums[-2] - 2 * sums[-3] + sums[-4]
            if d2 - d2_before >= 0 and -0.005 <= d2 < 0:
                return EllipseFit(float(centre[0]), float(centre[1]), cov, True, passes)
        _, new = _moments(weights, centre)
        if not _usable(new):
            break
        cov = new
    return EllipseFit(float(centre[0]), float(centre[1]), cov, False, MAX_COVARIANCE_PASSES)


def _binned_fit(img: np.ndarray, max_side: int = 512) -> EllipseFit:
    """gaussian_fit on a block-averaged copy of large images; centre and covariance in input px."""
    f = int(np.ceil(max(img.shape) / max_side))
    if f <= 1:
        return gaussian_fit(img)
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    fit = gaussian_fit(img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3)))
    return EllipseFit(fit.centre_row * f + (f - 1) / 2, fit.centre_col * f + (f - 1) / 2, fit.covariance * f * f,
                      fit.converged, fit.passes)


def semi_major_axis(cov: np.ndarray, cutoff: float = LIKELIHOOD_CUTOFF) -> float:
    """px: half the major axis of the contour where the normalised Gaussian of ``cov`` falls to ``cutoff``."""
    major_var = float(np.linalg.eigvalsh(cov)[1])
    m2 = 2.0 * math.log(1.0 / (2.0 * math.pi * math.sqrt(np.linalg.det(cov)) * cutoff))
    return math.sqrt(max(m2, 0.0) * major_var)


def galaxy_ellipse(img: np.ndarray) -> tuple[EllipseFit, list[str]]:
    """The fit, refitted without foreground stars when its centre drifts more than 2.5 px from the frame's
    centre (SpArcFiRe's star-mask step); warnings say what happened."""
    from evalcore.pixels.objects import find_stars

    warnings: list[str] = []
    h, w = img.shape
    fit = _binned_fit(img)
    drift = math.hypot(fit.centre_row - (h - 1) / 2, fit.centre_col - (w - 1) / 2)
    if drift > CENTRE_DRIFT_FOR_STAR_MASK:
        stars = find_stars(img)
        masked = np.where(stars.mask, 0.0, img)
        if stars.mask.any() and masked.sum() > 0:
            fit = _binned_fit(masked)
            warnings.append(f"centre {drift:.1f} px from the frame's centre: refitted without "
                            f"{len(stars.stars)} foreground star(s)")
        else:
            warnings.append(f"centre {drift:.1f} px from the frame's centre and no foreground star to mask")
    if not fit.converged:
        warnings.append(f"the ellipse fit did not converge in {MAX_COVARIANCE_PASSES} passes")
    return fit, warnings


def grid_geometry(centre_row: float, centre_col: float, major: np.ndarray, axis_ratio: float, radius: float,
                  n: int, deproject: bool = True, major_sigma: float = float("nan")) -> Geometry:
    """SpArcFiRe's map between its n x n grid and the input: the major axis (a (drow, dcol) vector) turned
    to point up the grid, its end pointing right (positive dcol) on top; with ``deproject`` the minor axis
    stretched by 1/axis_ratio; the square of half-side ``radius`` + 1/2 px around the centre (px) filling
    the grid. A rotation and stretches only: the grid is never a mirror image of the input."""
    major = np.asarray(major, np.float64) / np.hypot(*major)
    if major[1] < 0 or (major[1] == 0 and major[0] > 0):
        major = -major
    scale = (2.0 * radius + 1.0) / n  # input px per grid px
    right = np.array([major[1], -major[0]])  # 90 deg clockwise from "up" as displayed
    matrix = np.column_stack([-major, right * (axis_ratio if deproject else 1.0)]) * scale
    gc = (n - 1) / 2.0
    offset = np.array([centre_row, centre_col]) - matrix @ np.array([gc, gc])
    angle = float(np.degrees(np.arctan2(-major[0], major[1])))
    return Geometry(matrix=matrix, offset=offset, centre_row=float(centre_row), centre_col=float(centre_col),
                    axis_ratio=float(axis_ratio), major_axis_angle=angle, major_sigma=float(major_sigma),
                    crop_radius=float(radius))


DETECTED_LIGHT_QUANTILE = 95.0  # % of the galaxy's detected pixels the crop holds (elliptical radius)
DETECTED_LIGHT_MAX_WIDENING = 2.0  # the crop grows to at most this many times the fitted one


@dataclass(frozen=True)
class DetectedLight:
    """The galaxy's detected region (``objects.galaxy_region``, 1.5 sky sigmas) as an ellipse about the
    fitted centre: its shape from the region's second moments (a uniform ellipse gives its own axis ratio
    and orientation exactly), its size the DETECTED_LIGHT_QUANTILE percentile of the elliptical radius."""
    radius: float           # px along the major axis
    axis_ratio: float
    major: np.ndarray       # (drow, dcol) unit vector


def detected_light(detection: np.ndarray, centre: tuple[float, float]) -> DetectedLight | None:
    from evalcore.pixels.objects import galaxy_region

    region = galaxy_region(detection)
    if region.sum() < 20:
        return None
    rows, cols = np.nonzero(region)
    dr, dc = rows - centre[0], cols - centre[1]
    evals, evecs = np.linalg.eigh(np.cov(np.vstack([dr, dc])))
    if not evals[0] > 0:
        return None
    major = evecs[:, 1]
    q = float(np.sqrt(evals[0] / evals[1]))
    along = dr * major[0] + dc * major[1]
    across = -dr * major[1] + dc * major[0]
    radius = float(np.percentile(np.hypot(along, across / q), DETECTED_LIGHT_QUANTILE))
    return DetectedLight(radius=radius, axis_ratio=q, major=major)


def standardise(img: np.ndarray, params: ArcFinderParams, detection: np.ndarray | None = None) -> Standardised:
    """Cleaned [0, 1] plane -> the square grid the method works on, with the map back to the input.

    As SpArcFiRe: the major axis runs along the grid's columns (vertical), the minor axis is stretched by
    1/q (deprojection), the square of half-side ``crop_radius`` + 1/2 px around the centre fills the grid;
    pixels off the input are 0; the unsharp mask reads the input extended by its edge values and is zeroed
    off the input. With ``detection`` (the linear plane the galaxy is detected on) and
    ``params.crop_to_detected_light``, the crop holds at least 95 % of the galaxy's detected region, up to
    twice SpArcFiRe's crop: a bright bulge or bar narrows the Gaussian fit, never the galaxy's light.
    """
    h, w = img.shape
    n = params.resize
    warnings: list[str] = []
    if params.standardize:
        fit, warnings = galaxy_ellipse(img)
        cy, cx, cov = fit.centre_row, fit.centre_col, fit.covariance
        evals, evecs = np.linalg.eigh(cov)
        minor_var, major_var = max(evals[0], 1e-6), max(evals[1], 1e-6)
        major = evecs[:, 1]  # (drow, dcol)
        q = float(np.sqrt(minor_var / major_var))
        sigma = float(np.sqrt(major_var))
        radius = float(max(math.ceil(semi_major_axis(cov)), params.min_crop_radius))
        if detection is not None and params.crop_to_detected_light:
            light = detected_light(detection, (cy, cx))
            if light is not None and light.radius > radius:
                # the galaxy's light reaches past the fit: a bright bulge or bar drew the Gaussian in, and
                # its shape is the bulge's or bar's, not the disk's: take the detected disk's instead
                wider = float(math.ceil(min(light.radius, DETECTED_LIGHT_MAX_WIDENING * radius)))
                warnings.append(f"crop widened from {radius:g} to {wider:g} px and the disk's axis ratio "
                                f"{light.axis_ratio:.2f} (fit: {q:.2f}) taken from the galaxy's detected light")
                radius, q, major = wider, light.axis_ratio, light.major
        radius = min(radius, 0.5 * math.hypot(h, w))
        if 2 * radius * q < LOW_RESOLUTION_MINOR_AXIS:
            warnings.append(f"low resolution: the disk's minor axis spans {2 * radius * q:.1f} px "
                            f"(< {LOW_RESOLUTION_MINOR_AXIS:g})")
    else:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        major, q, sigma = np.array([-1.0, 0.0]), 1.0, float("nan")
        radius = max(h, w) / 2.0 - 0.5
    geometry = grid_geometry(cy, cx, major, q, radius, n, deproject=params.standardize and params.deproject,
                             major_sigma=sigma)
    matrix, offset, gc = geometry.matrix, geometry.offset, (n - 1) / 2.0
    scale = (2.0 * radius + 1.0) / n  # input px per grid px
    source = img
    if scale > 1.5:  # shrinking: smooth first so the grid does not alias
        source = ndimage.gaussian_filter(img, 0.5 * scale)
    plain = ndimage.affine_transform(source, matrix, offset=offset, output_shape=(n, n), order=1,
                                     mode="constant", cval=0.0)
    inside = ndimage.affine_transform(np.ones_like(img), matrix, offset=offset, output_shape=(n, n), order=1,
                                      mode="constant", cval=0.0)
    extended = ndimage.affine_transform(source, matrix, offset=offset, output_shape=(n, n), order=1,
                                        mode="nearest")
    # SpArcFiRe's blur kernel is (2 sigma + 1) px wide: a Gaussian truncated at one sigma
    blurred = ndimage.gaussian_filter(extended, params.unsharp_sigma, mode="nearest", truncate=1.0)
    usm = np.clip(extended + params.unsharp_amount * (extended - blurred), 0.0, 1.0) * np.clip(inside, 0.0, 1.0)
    plain = np.clip(plain, 0.0, 1.0)
    return Standardised(image=usm, plain=plain, geometry=geometry, grid_centre=(gc, gc), warnings=warnings)


def to_input_frame(labels: np.ndarray, geometry: Geometry, shape: tuple[int, int]) -> np.ndarray:
    """Reproject a label map on the grid to the input's (H, W) frame (nearest label, 0 outside)."""
    inv = np.linalg.inv(geometry.matrix)
    return ndimage.affine_transform(labels, inv, offset=-inv @ geometry.offset, output_shape=shape, order=0,
                                    mode="constant", cval=0).astype(labels.dtype)
