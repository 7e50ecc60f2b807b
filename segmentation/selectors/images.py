"""Reads of stored images: colour pixels and band data.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from segmentation.models import Image


def image_rgb(image: Image) -> np.ndarray:
    """The stored RGB pixels of an image, (H, W, 3) uint8, row 0 = north."""
    with image.file.open("rb") as fh:
        data = fh.read()
    with PILImage.open(io.BytesIO(data)) as pil:
        arr = np.array(pil.convert("RGB"))  # a writable copy: torch refuses read-only arrays
    if arr.shape[:2] != (image.height, image.width):
        raise ValueError(f"image {image.pk}: stored pixels are {arr.shape[1]}x{arr.shape[0]}, "
                         f"expected {image.width}x{image.height}")
    return arr


def image_bands(image: Image) -> np.ndarray | None:
    """The imported band data (e.g. a (3, H, W) g,r,z cube or an (H, W) plane), or None when there is none."""
    if not image.raw:
        return None
    from astropy.io import fits

    with image.raw.open("rb") as fh, fits.open(io.BytesIO(fh.read())) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim in (2, 3):
                return np.asarray(hdu.data, dtype=np.float32)
    return None
