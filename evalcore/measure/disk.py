"""Disk axis ratio and position angle from the image itself, when no catalogue gives them (no Django).

The region above a low isophote that contains the centre is an ellipse for any elliptical light profile,
and the second moments of a uniform ellipse give its axis ratio and orientation exactly. A low isophote
(default 20% of the bright end) keeps the round bulge and the bar from dominating; stars touching the
region and strong arms still bias it, so catalogue values are preferred when they exist.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .bar import EIGHT_NEIGHBOURS
from .geometry import position_angle_deg
from .results import plain


@dataclass
class DiskOrientation:
    axis_ratio: float  # b/a
    position_angle: float  # of the major axis, deg east of north in [0, 180)
    semi_major: float  # px, of the isophote region
    level: float  # the isophote, in image units above the background
    n_pixels: int

    def to_dict(self) -> dict:
        return plain(self)


def disk_orientation(image: np.ndarray, *, centre: tuple[float, float] | None = None,
                     level_fraction: float = 0.2) -> DiskOrientation:
    """Fit the disk ellipse of an (H, W) or (H, W, 3) image (row 0 = north, east left).

    The background is the median of the border pixels; the isophote is ``level_fraction`` times the
    99th percentile above it; ``centre`` (row, col) px defaults to the image centre.
    """
    img = np.asarray(image, float)
    if img.ndim == 3:
        img = img.mean(axis=2)
    if img.ndim != 2:
        raise ValueError(f"the image must be (H, W) or (H, W, 3), got shape {np.shape(image)}")
    if not np.all(np.isfinite(img)):
        raise ValueError("the image contains NaN or infinite pixels")
    if not 0 < level_fraction < 1:
        raise ValueError(f"level_fraction must be in (0, 1), got {level_fraction}")
    h, w = img.shape
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    light = img - np.median(border)
    top = float(np.percentile(light, 99))
    if top <= 0:
        raise ValueError("the image has no source above its border's background")
    level = level_fraction * top
    c_row, c_col = centre if centre is not None else ((h - 1) / 2, (w - 1) / 2)
    labels, _ = ndimage.label(light >= level, structure=EIGHT_NEIGHBOURS)
    label = labels[int(round(c_row)), int(round(c_col))]
    if label == 0:
        raise ValueError(f"the centre ({c_row:g}, {c_col:g}) is below the isophote: no disk there")
    rows, cols = np.nonzero(labels == label)
    if len(rows) < 10:
        raise ValueError(f"the disk region has only {len(rows)} px: too small to fit an ellipse")
    cov = np.cov(np.stack([rows, cols]).astype(float))
    vals, vecs = np.linalg.eigh(cov)
    major = vecs[:, 1]  # (d_row, d_col) of the long axis
    # A uniform ellipse of semi-axes a, b has variances a^2 / 4 and b^2 / 4 along its axes.
    return DiskOrientation(
        axis_ratio=float(np.sqrt(max(vals[0], 0.0) / vals[1])),
        position_angle=float(position_angle_deg(major[0], major[1])),
        semi_major=float(2 * np.sqrt(vals[1])), level=level, n_pixels=int(len(rows)),
    )
