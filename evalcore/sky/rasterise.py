"""Polygons -> pixel masks (no Django). One fill rule for every caller: readers, importers, reprojection.

Fill rule (the one the GZ3D release used for HDU 3 / 4):

- Vertices are ``[x, y]`` in image pixels with the centre of pixel (row ``r``, column ``c``) at
  ``(x, y) = (c, r)``: x to the right along a row, y down the rows, row 0 the top of the picture.
  This is also astropy's 0-based pixel convention (``origin=0``).
- A pixel is covered when its centre is inside the closed polygon (last vertex joined to the first) by
  the even-odd rule. A centre exactly on an edge is decided half-open: inside on a left or top edge,
  outside on a right or bottom edge, so two polygons that share an edge never both claim its pixels.

The scanline fill is vectorised numpy: O(edges x rows crossed) per polygon, about 0.1-1 ms for a hand
drawn polygon on a 525 x 525 image.
"""
from __future__ import annotations

import numpy as np


def polygon_rows(vertices, shape: tuple[int, int]) -> tuple[int, np.ndarray]:
    """The rows a polygon covers: (first row, bool block of shape (n_rows, W)); n_rows may be 0.

    ``polygon_mask`` in a compact form, for callers that accumulate many polygons on one large grid.
    """
    height, width = int(shape[0]), int(shape[1])
    empty = (0, np.zeros((0, width), bool))
    pts = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return empty
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    sloped = y0 != y1
    x0, y0, x1, y1 = x0[sloped], y0[sloped], x1[sloped], y1[sloped]
    if len(x0) == 0:
        return empty
    ymin, ymax = np.minimum(y0, y1), np.maximum(y0, y1)
    # an edge crosses the row centres r with ymin <= r < ymax (half-open, so shared vertices count once)
    first = np.clip(np.ceil(ymin), 0, height).astype(np.int64)
    stop = np.clip(np.ceil(ymax), 0, height).astype(np.int64)
    n = stop - first
    keep = n > 0
    if not keep.any():
        return empty
    x0, y0, x1, y1, first, n = x0[keep], y0[keep], x1[keep], y1[keep], first[keep], n[keep]
    edge = np.repeat(np.arange(len(n)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    rows = first[edge] + offsets
    xs = x0[edge] + (rows - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    # every pixel centre at or right of a crossing sees one more crossing on its left: toggle there
    cols = np.clip(np.ceil(xs), 0, width).astype(np.int64)
    r_lo, r_hi = int(rows.min()), int(rows.max()) + 1
    toggles = np.bincount((rows - r_lo) * (width + 1) + cols, minlength=(r_hi - r_lo) * (width + 1))
    parity = np.cumsum(toggles.reshape(r_hi - r_lo, width + 1), axis=1) & 1
    return r_lo, parity[:, :width].astype(bool)


def polygon_mask(vertices, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (bool, ``shape`` = (H, W)) whose centres lie inside the polygon ``vertices`` [(x, y) px]."""
    out = np.zeros(shape, bool)
    first, block = polygon_rows(vertices, shape)
    out[first:first + len(block)] = block
    return out


def union_mask(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (bool) covered by any of ``polygons`` (each a list of [x, y] px)."""
    out = np.zeros(shape, bool)
    for poly in polygons:
        first, block = polygon_rows(poly, shape)
        out[first:first + len(block)] |= block
    return out


def count_mask(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Per pixel, how many of ``polygons`` cover it (int64)."""
    out = np.zeros(shape, np.int64)
    for poly in polygons:
        first, block = polygon_rows(poly, shape)
        out[first:first + len(block)] += block
    return out


def _segments_cross(p1, p2, q1, q2) -> np.ndarray:
    """Elementwise: do segments p1-p2 and q1-q2 (arrays of (..., 2)) intersect, touching included?"""

    def orient(a, b, c):
        return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                       - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    def on_segment(a, b, c):  # c collinear with a-b: is it within the bounding box of a-b?
        return ((np.minimum(a[..., 0], b[..., 0]) <= c[..., 0]) & (c[..., 0] <= np.maximum(a[..., 0], b[..., 0]))
                & (np.minimum(a[..., 1], b[..., 1]) <= c[..., 1]) & (c[..., 1] <= np.maximum(a[..., 1], b[..., 1])))

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    touch = (((d1 == 0) & on_segment(q1, q2, p1)) | ((d2 == 0) & on_segment(q1, q2, p2))
             | ((d3 == 0) & on_segment(p1, p2, q1)) | ((d4 == 0) & on_segment(p1, p2, q2)))
    return proper | touch


def is_self_intersecting(vertices) -> bool:
    """Does the open path through ``vertices`` cross or touch itself?

    The GZ3D release dropped such polygons from HDU 3 / 4 (a shapely ``LineString(...).is_simple`` test
    on the path as drawn, without the closing edge); this reproduces that test. Repeated consecutive
    vertices are ignored; a path that ends where it started is not self-intersecting for that alone.
    """
    pts = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if len(pts) > 1:
        pts = pts[np.r_[True, np.any(pts[1:] != pts[:-1], axis=1)]]
    closed = len(pts) > 3 and np.array_equal(pts[0], pts[-1])
    n = len(pts) - 1  # segments
    if n < 2:
        return False
    i, j = np.triu_indices(n, k=2)  # non-adjacent segment pairs
    if closed:
        keep = ~((i == 0) & (j == n - 1))  # first and last segments meet at the closing vertex
        i, j = i[keep], j[keep]
    if len(i) == 0:
        return False
    hit = _segments_cross(pts[i], pts[i + 1], pts[j], pts[j + 1])
    if hit.any():
        return True
    # adjacent segments overlap only when the path doubles back on itself
    a, b, c = pts[:-2], pts[1:-1], pts[2:]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    dot = (a[:, 0] - b[:, 0]) * (c[:, 0] - b[:, 0]) + (a[:, 1] - b[:, 1]) * (c[:, 1] - b[:, 1])
    return bool(np.any((cross == 0) & (dot > 0)))
