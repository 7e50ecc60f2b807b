"""Plane geometry on the image grid: sky directions, disk deprojection, minimum-area rectangles (no Django).

Image convention: row 0 is north, east is to the left (column 0 is the east edge), as on the sky. A pixel
offset (d_row, d_col) is therefore (north, east) = (-d_row, -d_col) on the sky.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError


def sky_offsets(d_row, d_col) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets (px) -> (north, east) offsets (px) under the row 0 = north, east = left convention."""
    return -np.asarray(d_row, float), -np.asarray(d_col, float)


def position_angle_deg(d_row, d_col) -> np.ndarray:
    """Position angle (deg east of north, in [0, 180)) of the undirected line along pixel offset (d_row, d_col)."""
    north, east = sky_offsets(d_row, d_col)
    return np.mod(np.degrees(np.arctan2(east, north)), 180.0)


def check_disk(axis_ratio: float, position_angle: float) -> None:
    """Refuse a disk orientation that cannot be deprojected (b/a outside (0, 1], non-finite PA)."""
    if not np.isfinite(axis_ratio) or not 0 < axis_ratio <= 1:
        raise ValueError(f"the disk axis ratio b/a must be in (0, 1], got {axis_ratio}")
    if not np.isfinite(position_angle):
        raise ValueError(f"the disk position angle must be a finite number of degrees, got {position_angle}")


def disk_coordinates(d_row, d_col, axis_ratio: float, position_angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets from the centre (px) -> coordinates in the plane of a thin inclined disk (px).

    Returns (along the major axis, along the minor axis stretched by 1 / (b/a)). ``position_angle`` is the
    disk major axis in deg east of north. The pair keeps the handedness of the sky view: a rotation that is
    anticlockwise on the image (north up, east left) is anticlockwise in the returned (major, minor) frame.
    """
    check_disk(axis_ratio, position_angle)
    north, east = sky_offsets(d_row, d_col)
    pa = np.radians(position_angle)
    along_major = north * np.cos(pa) + east * np.sin(pa)
    along_minor = -north * np.sin(pa) + east * np.cos(pa)
    return along_major, along_minor / axis_ratio


def deprojected_length(length, segment_pa, axis_ratio: float, position_angle: float) -> np.ndarray:
    """Length (any unit) of a segment at ``segment_pa`` (deg E of N) once the disk is seen face-on.

    A thin disk of axis ratio b/a keeps lengths along its major axis and shortens those along its minor
    axis by b/a; undoing that stretches the minor-axis component by 1 / (b/a).
    """
    check_disk(axis_ratio, position_angle)
    delta = np.radians(np.asarray(segment_pa, float) - position_angle)
    return np.asarray(length, float) * np.hypot(np.cos(delta), np.sin(delta) / axis_ratio)


@dataclass
class Rectangle:
    """A rotated rectangle on the image grid: centre (row, col) in px, sides in px, long-side PA in deg E of N."""

    centre_row: float
    centre_col: float
    length: float  # long side, px
    width: float  # short side, px
    position_angle: float  # of the long side, deg east of north in [0, 180)

    @property
    def axis_ratio(self) -> float:
        return self.width / self.length if self.length > 0 else float("nan")


def pixel_corner_points(region: np.ndarray) -> np.ndarray:
    """(N, 2) (row, col) corners of the boundary pixels of a boolean region.

    Pixels are unit squares centred on integer coordinates, so a region of n x m pixels spans n x m px;
    taking pixel centres instead (as OpenCV's contours do) would make every side one pixel too short.
    """
    region = np.asarray(region, bool)
    padded = np.pad(region, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    rows, cols = np.nonzero(region & ~interior)
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    pts = np.stack([rows, cols], axis=1)[:, None, :] + offsets[None, :, :]
    return np.unique(pts.reshape(-1, 2), axis=0)


def min_area_rectangle(points: np.ndarray) -> Rectangle:
    """Minimum-area enclosing rectangle of (N, 2) (row, col) points (px), by rotating calipers on the hull.

    The optimal rectangle has one side along a hull edge, so every hull edge direction is tried.
    """
    points = np.asarray(points, float)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise ValueError(f"need at least 3 (row, col) points, got an array of shape {points.shape}")
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError as exc:  # all points on one line: no area to enclose
        raise ValueError("the points are collinear: no rectangle encloses them with non-zero area") from exc
    edges = np.roll(hull, -1, axis=0) - hull
    edges = edges[np.hypot(edges[:, 0], edges[:, 1]) > 0]
    unit = edges / np.hypot(edges[:, 0], edges[:, 1])[:, None]
    normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1)
    along = hull @ unit.T  # (n_points, n_edges)
    across = hull @ normal.T
    extent_a = along.max(axis=0) - along.min(axis=0)
    extent_b = across.max(axis=0) - across.min(axis=0)
    best = int(np.argmin(extent_a * extent_b))
    mid_a = (along[:, best].max() + along[:, best].min()) / 2
    mid_b = (across[:, best].max() + across[:, best].min()) / 2
    centre = mid_a * unit[best] + mid_b * normal[best]
    if extent_a[best] >= extent_b[best]:
        length, width, direction = extent_a[best], extent_b[best], unit[best]
    else:
        length, width, direction = extent_b[best], extent_a[best], normal[best]
    return Rectangle(
        centre_row=float(centre[0]), centre_col=float(centre[1]), length=float(length), width=float(width),
        position_angle=float(position_angle_deg(direction[0], direction[1])),
    )
