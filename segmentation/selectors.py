"""Reads of the segmentation app that more than one caller needs."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from segmentation.models import Galaxy, Image


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


def galaxy_ids_in_split(split: str, galaxies=None) -> list[int]:
    """Ids of the galaxies (all, or those of the ``galaxies`` queryset) in ``split``: "train", "val" or "test".

    The split is the sky-cell one of ``evalcore.sky.splits.split_for`` on the galaxy's ra/dec (its name when it
    has no position), exactly as training assigns it and records it in each model version's manifest, so a
    test galaxy is the same galaxy for training, generation, measurements and comparisons.
    """
    from evalcore.sky.splits import SPLITS, split_for

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    rows = (galaxies if galaxies is not None else Galaxy.objects.all()).values_list("pk", "ra", "dec", "name")
    return [pk for pk, ra, dec, name in rows.iterator(chunk_size=2000) if split_for(ra, dec, name=name) == split]


def galaxy_ids(galaxies, split: str | None = None) -> list[int]:
    """Ids of the ``galaxies`` queryset, or of those of them in ``split`` when one is given."""
    return galaxy_ids_in_split(split, galaxies) if split else list(galaxies.values_list("pk", flat=True))
