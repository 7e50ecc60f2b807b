"""Moving masks from one image of a galaxy to another by their WCS (no Django).

Two ways, both exact in k/N:

- ``reproject_classification_counts``: every volunteer polygon vertex goes pixel -> sky (source WCS) ->
  pixel (target WCS) and the polygons are rasterised again on the target grid with the union rule of
  ``evalcore.sky.rasterise``. Used whenever the raw polygons are known.
- ``resample_nearest``: each target pixel centre takes the value of the source pixel containing it
  (0 outside the source). Used for masks without polygons (HDU 3 / 4 fallbacks, truth masks); keeps
  integer numerators integer, at the price of aliasing when the target pixels are larger.

Pixels are 0-based with pixel centres at integers (astropy's ``origin=0``), as in ``evalcore.sky.rasterise``.
"""
from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from evalcore.sky import rasterise


def transform_pixels(xy: np.ndarray, source: WCS, target: WCS) -> np.ndarray:
    """(n, 2) pixel positions [x, y] on the source grid -> the same sky positions on the target grid [px]."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return xy
    world = source.pixel_to_world_values(xy[:, 0], xy[:, 1])
    tx, ty = target.world_to_pixel_values(*world)
    return np.column_stack([tx, ty])


def reproject_polygons(polygons, source: WCS, target: WCS) -> list:
    """Polygons (lists of [x, y] source px) -> lists of [x, y] target px, vertex by vertex."""
    if not polygons:
        return []
    sizes = [len(p) for p in polygons]
    moved = transform_pixels(np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]),
                             source, target)
    out, start = [], 0
    for n in sizes:
        out.append(moved[start:start + n].tolist())
        start += n
    return out


def reproject_classification_counts(classifications_polygons, source: WCS, target: WCS,
                                    shape: tuple[int, int]) -> np.ndarray:
    """Per target pixel (``shape`` = (H, W)), how many classifications cover it: each classification's
    polygons (a list per classification, in source px) are moved to the target grid and their union
    counted once. int64."""
    out = np.zeros(shape, np.int64)
    for polygons in classifications_polygons:
        out += rasterise.union_mask(reproject_polygons(polygons, source, target), shape)
    return out


def resample_nearest(array: np.ndarray, source: WCS, target: WCS, shape: tuple[int, int], fill=0) -> np.ndarray:
    """Nearest-neighbour resampling of a 2-D ``array`` on the source grid onto a target grid of ``shape``
    (H, W): each target pixel centre takes the source pixel it falls in; ``fill`` outside. Same dtype."""
    array = np.asarray(array)
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    world = target.pixel_to_world_values(xs.ravel().astype(np.float64), ys.ravel().astype(np.float64))
    sx, sy = source.world_to_pixel_values(*world)
    col, row = np.rint(sx), np.rint(sy)
    inside = np.isfinite(col) & np.isfinite(row)
    inside &= (col >= 0) & (col < array.shape[1]) & (row >= 0) & (row < array.shape[0])
    out = np.full(height * width, fill, dtype=array.dtype)
    out[inside] = array[row[inside].astype(np.int64), col[inside].astype(np.int64)]
    return out.reshape(shape)
