"""Reads of stored images: colour pixels and band data (one reader: ``evalcore.formats.banddata``).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from evalcore.formats import banddata
from segmentation.models import Image

LUMINANCE = "luminance"  # band choice: the RGB luma even when band data exist


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


def image_band_data(image: Image) -> banddata.BandData | None:
    """The imported band data on the image's grid (row 0 = north) with the bands' names, or None when the
    image has none. Raises ``banddata.BandDataError`` when the stored file is unusable."""
    if not image.raw:
        return None
    with image.raw.open("rb") as fh:
        return banddata.read_band_data(fh.read(), shape=(image.height, image.width))


def image_bands(image: Image) -> np.ndarray | None:
    """The imported band planes: a (n, H, W) cube, or an (H, W) plane for one band; None when there are none."""
    data = image_band_data(image)
    if data is None:
        return None
    return data.planes[0] if len(data.names) == 1 else data.planes


def image_band_source(image: Image) -> tuple[banddata.BandData | None, str]:
    """The image's band data (None when there are none or they are unusable) and a note on where a grey
    picture of the image comes from."""
    try:
        bands = image_band_data(image)
    except (OSError, banddata.BandDataError) as exc:
        return None, f"RGB luminance (band data unusable: {exc})"
    if bands is None:
        return None, "RGB luminance (no band data stored)"
    return bands, f"band data ({', '.join(bands.names)})"
