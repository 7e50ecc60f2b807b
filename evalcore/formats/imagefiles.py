"""Image files for import: FITS (one band, or a g,r,z cube), PNG and JPEG, read into RGB pixels (no Django).

Image files (``read_image``): FITS (one band, or a g,r,z cube of shape (3, H, W) in nanomaggies, plain or
gzipped), PNG and JPEG. Sizes are checked before anything is decoded. FITS data are turned so that row 0
is north: FITS stores its first row at the bottom of the picture, so a file whose WCS puts north towards
higher rows (every Legacy Survey cutout), or that has no WCS, is flipped top to bottom, together with its
WCS and any truth masks. PNG and JPEG rows are taken as they are (row 0 = top of the picture). The colour
conventions are in ``evalcore.pixels.colour``; the band data are kept as ``evalcore.formats.banddata``.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image as PILImage

from evalcore.formats import banddata, coords, files, truthfile
from evalcore.pixels.colour import MONO_CLIP_PERCENTILES, gri_to_rgb, grz_to_rgb, mono_to_rgb

# --- image files ------------------------------------------------------------------------------------
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_FITS_MAGIC = b"SIMPLE  ="


class ImageFileError(ValueError):
    """An image file that cannot be imported; the message says why."""


@dataclass
class ImageData:
    """An image file read for import. ``rgb`` is (H, W, 3) uint8 on the grid ``wcs`` describes."""

    rgb: np.ndarray
    bands: str  # colour convention, e.g. "grz asinh (Legacy Survey)", "r asinh (0.5-99.5 %)", "RGB"
    format: str  # "fits" | "png" | "jpeg"
    wcs: WCS | None = None  # celestial WCS of ``rgb`` (FITS pixel y = array row + 1)
    raw_fits: bytes | None = None  # the band data on the grid of ``rgb``, as a FITS file
    truth: truthfile.Truth | None = None
    flipped: bool = False  # rows were reversed so that row 0 is north

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]


def strip_image_suffix(filename: str) -> str | None:
    """``'NGC1300.fits.gz'`` -> ``'NGC1300'``; None when the name has no image suffix."""
    lower = filename.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def read_image(path, *, max_pixels: int, max_bytes: int) -> ImageData:
    """Read a FITS, PNG or JPEG file for import, refusing files over ``max_bytes`` (also after gunzip)
    and images over ``max_pixels`` before decoding them. Raises ImageFileError with the reason."""
    path = Path(path)
    try:
        content = files.read_bytes_limited(path, max_bytes)
    except files.FileLimitError as exc:
        raise ImageFileError(str(exc)) from None
    except OSError as exc:
        raise ImageFileError(f"cannot read the file ({exc.strerror or exc})") from None
    if content.startswith(_FITS_MAGIC):
        return _read_fits(content, max_pixels)
    if content.startswith(_PNG_MAGIC) or content.startswith(_JPEG_MAGIC):
        return _read_picture(content, max_pixels)
    if not content:
        raise ImageFileError("the file is empty")
    raise ImageFileError("not a FITS, PNG or JPEG file")


def _image_hdu(hdul: fits.HDUList):
    for hdu in hdul:
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    raise ImageFileError("the FITS file has no image HDU")


def _fits_bands(header: fits.Header, n: int) -> tuple[str, ...]:
    named = [header.get(f"BAND{i}") for i in range(n)]
    if all(isinstance(b, str) and b.strip() for b in named):
        return tuple(b.strip().lower() for b in named)
    bands = header.get("BANDS")
    if isinstance(bands, str) and len(bands.strip()) == n:
        return tuple(bands.strip().lower())
    if n == 1:
        band = header.get("FILTER") or header.get("BAND")
        return (str(band).strip(),) if band else ("",)
    return ("g", "r", "z")  # the Legacy Survey cutout order


def _read_fits(content: bytes, max_pixels: int) -> ImageData:
    try:
        hdul = fits.open(io.BytesIO(content), memmap=False)
    except Exception as exc:
        raise ImageFileError(f"not a readable FITS file ({exc})") from None
    with hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        hdu = _image_hdu(hdul)
        header = hdu.header
        naxis = header["NAXIS"]
        shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(naxis, 0, -1))
        if naxis == 2:
            n_planes = 1
        elif naxis == 3 and shape[0] in (1, 3):
            n_planes = shape[0]
        else:
            raise ImageFileError(f"FITS image has shape {shape}; expected (H, W), (1, H, W) or a g,r,z cube (3, H, W)")
        height, width = shape[-2:]
        if height * width > max_pixels:
            raise ImageFileError(f"image is {width}x{height} px, more than the limit of {max_pixels} pixels")
        if height < 2 or width < 2:
            raise ImageFileError(f"image is {width}x{height} px, too small to be a galaxy image")
        try:
            data = np.asarray(hdu.data, dtype=np.float32)
        except Exception as exc:
            raise ImageFileError(f"cannot read the FITS image data: truncated or damaged file ({exc})") from None
        if data.shape != shape:
            raise ImageFileError(f"FITS image data have shape {data.shape}, the header says {shape} (truncated?)")
        cube = data.reshape(n_planes, height, width)
        if not np.all(np.isfinite(cube)):
            bad = int(np.count_nonzero(~np.isfinite(cube)))
            raise ImageFileError(f"{bad} NaN or infinite pixel(s) in the band data")
        bands = _fits_bands(header, n_planes)
        try:
            wcs = coords.celestial_wcs(header)
        except coords.WCSError as exc:
            raise ImageFileError(f"the FITS header has an {exc}") from None
        try:
            truth = truthfile.read_truth(hdul)
        except (ValueError, KeyError) as exc:
            raise ImageFileError(f"unusable truth extensions ({exc})") from None
    if truth is not None and truth.spiral.shape != (height, width):
        raise ImageFileError(f"truth masks are {truth.spiral.shape}, the image is {(height, width)}")

    flip = wcs is None or not coords.north_is_up(wcs, (height, width))
    if flip:
        cube = cube[:, ::-1, :]
        wcs = coords.flip_rows_wcs(wcs, height) if wcs is not None else None
        if truth is not None:
            truth = truthfile.Truth(spiral=truth.spiral[::-1].copy(), bar=truth.bar[::-1].copy(), params=truth.params)
    cube = np.ascontiguousarray(cube)
    try:
        if n_planes == 3 and bands == ("g", "r", "i"):  # SDSS colour images: the Lupton composite
            rgb = gri_to_rgb(cube)
            label = "gri asinh Lupton (SDSS)"
        elif n_planes == 3:
            rgb = grz_to_rgb(cube, bands=bands)
            label = f"{''.join(bands)} asinh (Legacy Survey)"
        else:
            rgb = mono_to_rgb(cube[0])
            lo, hi = MONO_CLIP_PERCENTILES
            label = f"{bands[0] or 'single band'} asinh ({lo}-{hi} %)".strip()
    except ValueError as exc:
        raise ImageFileError(str(exc)) from None
    raw = banddata.band_fits_bytes(cube if n_planes == 3 else cube[0], wcs, bands, header.get("BUNIT"))
    return ImageData(rgb=rgb, bands=label, format="fits", wcs=wcs, raw_fits=raw, truth=truth, flipped=flip)


def _read_picture(content: bytes, max_pixels: int) -> ImageData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            pil = PILImage.open(io.BytesIO(content), formats=["PNG", "JPEG"])
        except PILImage.DecompressionBombError as exc:
            raise ImageFileError(f"image is larger than the limit of {max_pixels} pixels ({exc})") from None
        except Exception as exc:
            raise ImageFileError(f"not a readable PNG or JPEG file ({exc})") from None
        with pil:
            width, height = pil.size
            if width * height > max_pixels:
                raise ImageFileError(f"image is {width}x{height} px, more than the limit of {max_pixels} pixels")
            try:
                pil.load()
            except Exception as exc:
                raise ImageFileError(f"cannot decode the {pil.format} image ({exc})") from None
            fmt = pil.format.lower()
            if pil.mode in ("I", "I;16", "I;16B", "F"):
                rgb = mono_to_rgb(np.asarray(pil, dtype=np.float32))
                label = "grey asinh ({}-{} %)".format(*MONO_CLIP_PERCENTILES)
            else:
                rgb = np.asarray(pil.convert("RGB"), dtype=np.uint8)
                label = "RGB" if pil.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr") else f"RGB from {pil.mode}"
    return ImageData(rgb=np.ascontiguousarray(rgb), bands=label, format=fmt)

