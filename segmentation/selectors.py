"""Reads of the segmentation app that more than one caller needs."""
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
        arr = np.asarray(pil.convert("RGB"))
    if arr.shape[:2] != (image.height, image.width):
        raise ValueError(f"image {image.pk}: stored pixels are {arr.shape[1]}x{arr.shape[0]}, "
                         f"expected {image.width}x{image.height}")
    return arr
