"""Turning band data into the RGB pictures people see and models read (no Django).

Colour convention: the DESI Legacy Surveys' g,r,z -> RGB mapping (as in their cutout service and the
colour JPEGs the reference study trained on). Fluxes in nanomaggies; each band is scaled, offset by ``m``,
and all three share one arcsinh stretch of their mean intensity ``I``:

    x_b = max(0, flux_b * scale_b + m),  I = mean_b(x_b),  out_b = clip(x_b * asinh(Q I) / (sqrt(Q) I), 0, 1)

with g -> blue (scale 6.0), r -> green (3.4), z -> red (2.2), m = 0.03, Q = 20. Row 0 of every array is
north (top), east to the left, as on the sky.

Image files (``read_image``): FITS (one band, or a g,r,z cube of shape (3, H, W) in nanomaggies, plain or
gzipped), PNG and JPEG. Sizes are checked before anything is decoded. FITS data are turned so that row 0
is north: FITS stores its first row at the bottom of the picture, so a file whose WCS puts north towards
higher rows (every Legacy Survey cutout), or that has no WCS, is flipped top to bottom, together with its
WCS and any truth masks. PNG and JPEG rows are taken as they are (row 0 = top of the picture).
"""
from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image as PILImage

from evalcore.formats import truthfile

LEGACY_SURVEY_RGB = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}  # band -> (RGB plane, scale)
LEGACY_SURVEY_M = 0.03
LEGACY_SURVEY_Q = 20.0
LEGACY_SURVEY_PIXEL_SCALE = 0.262  # arcsec / px


def grz_to_rgb(cube: np.ndarray, bands: tuple[str, ...] = ("g", "r", "z"), m: float = LEGACY_SURVEY_M,
               q: float = LEGACY_SURVEY_Q) -> np.ndarray:
    """(n_bands, H, W) fluxes in nanomaggies -> (H, W, 3) uint8 RGB, Legacy Survey convention."""
    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 3 or cube.shape[0] != len(bands):
        raise ValueError(f"expected a ({len(bands)}, H, W) cube for bands {bands}, got shape {cube.shape}")
    unknown = [b for b in bands if b not in LEGACY_SURVEY_RGB]
    if unknown:
        raise ValueError(f"no colour for band(s) {unknown}; known: {sorted(LEGACY_SURVEY_RGB)}")
    if not np.all(np.isfinite(cube)):
        raise ValueError("band data contain NaN or infinite pixels")
    scaled = {b: np.maximum(0.0, cube[i] * LEGACY_SURVEY_RGB[b][1] + m) for i, b in enumerate(bands)}
    intensity = sum(scaled.values()) / len(bands)
    intensity = np.where(intensity == 0, 1e-6, intensity)
    stretch = np.arcsinh(q * intensity) / (np.sqrt(q) * intensity)
    rgb = np.zeros(cube.shape[1:] + (3,), np.float32)
    for b, x in scaled.items():
        rgb[..., LEGACY_SURVEY_RGB[b][0]] = np.clip(x * stretch, 0.0, 1.0)
    return np.rint(rgb * 255).astype(np.uint8)


# --- single bands -----------------------------------------------------------------------------------
MONO_CLIP_PERCENTILES = (0.5, 99.5)
MONO_Q = 10.0


def mono_to_rgb(plane: np.ndarray, q: float = MONO_Q,
                percentiles: tuple[float, float] = MONO_CLIP_PERCENTILES) -> np.ndarray:
    """(H, W) band data in any flux unit -> (H, W, 3) uint8 grey RGB.

    A single band has no known zero point, so the stretch is relative: clip to the given percentiles,
    scale to [0, 1], then asinh(q x) / asinh(q). A flat image becomes black rather than failing.
    """
    plane = np.asarray(plane, dtype=np.float32)
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) band, got shape {plane.shape}")
    if not np.all(np.isfinite(plane)):
        raise ValueError("band data contain NaN or infinite pixels")
    lo, hi = np.percentile(plane, percentiles)
    span = hi - lo
    x = np.clip((plane - lo) / span, 0.0, 1.0) if span > 0 else np.zeros_like(plane)
    grey = np.arcsinh(q * x) / np.arcsinh(q)
    grey = np.rint(grey * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


# --- image files ------------------------------------------------------------------------------------
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES
_GZIP_MAGIC = b"\x1f\x8b"
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


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Mean pixel scale of a celestial WCS [arcsec/px]."""
    return float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)


def north_up_wcs(ra: float, dec: float, shape: tuple[int, int], pixel_scale: float) -> WCS:
    """TAN WCS of an (H, W) image centred on (ra, dec) [deg] at ``pixel_scale`` [arcsec/px], row 0 north,
    east left (as a picture is shown: FITS y = array row + 1, so north is towards lower y)."""
    height, width = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    w.wcs.cd = np.array([[-1.0, 0.0], [0.0, -1.0]]) * pixel_scale / 3600.0
    w.wcs.set()
    return w


def wcs_to_text(wcs: WCS | None) -> str:
    """FITS header text of a WCS, one card per line (as the GZ3D importer stores it); '' for None.
    Read it back with ``wcs_from_text`` (or ``WCS(fits.Header.fromstring(text, sep='\\n'))``)."""
    return "" if wcs is None else wcs.to_header().tostring(sep="\n")


def wcs_from_text(text: str) -> WCS | None:
    """The celestial WCS stored as header text by an importer (with or without newlines); None if empty."""
    if not text:
        return None
    header = fits.Header.fromstring(text, sep="\n" if "\n" in text else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=2)


def flip_rows_wcs(wcs: WCS, height: int) -> WCS:
    """The WCS of the same image with its rows reversed (array row r -> height - 1 - r)."""
    w = wcs.deepcopy()
    w.wcs.crpix = [w.wcs.crpix[0], height + 1 - w.wcs.crpix[1]]
    if w.wcs.has_cd():
        cd = np.array(w.wcs.cd)
        cd[:, 1] *= -1
        w.wcs.cd = cd
    else:
        pc = np.array(w.wcs.get_pc())
        pc[:, 1] *= -1
        w.wcs.pc = pc
    w.wcs.set()
    return w


def north_is_up(wcs: WCS, shape: tuple[int, int]) -> bool:
    """True when north points towards row 0 (lower FITS y) at the image centre."""
    height, width = shape
    cx, cy = (width - 1) / 2, (height - 1) / 2
    sky = wcs.pixel_to_world_values(cx, cy)
    ra, dec = float(sky[0]), float(sky[1])
    step = pixel_scale_arcsec(wcs) / 3600.0
    sign = 1.0 if dec + step < 90 else -1.0  # near the pole, step south and invert
    _, y = wcs.world_to_pixel_values(ra, dec + sign * step)
    return bool(sign * (float(y) - cy) < 0)


def _celestial_wcs(header: fits.Header) -> WCS | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, naxis=2)
        except Exception as exc:  # astropy raises many types for broken WCS keywords
            raise ImageFileError(f"the FITS header has an unusable WCS ({exc})") from None
    return w.celestial if w.has_celestial else None


def _read_limited(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageFileError(f"file is {size} bytes, more than the limit of {max_bytes}")
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    # A small gzip file can expand without limit: stop decompressing at the limit.
    out, inflater = io.BytesIO(), zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        pending = data
        while pending:
            out.write(inflater.decompress(pending, max(1, max_bytes + 1 - out.tell())))
            if out.tell() > max_bytes:
                raise ImageFileError(f"decompresses to more than the limit of {max_bytes} bytes")
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise ImageFileError("truncated gzip data")
    except zlib.error as exc:
        raise ImageFileError(f"corrupt gzip data ({exc})") from None
    return out.getvalue()


def read_image(path, *, max_pixels: int, max_bytes: int) -> ImageData:
    """Read a FITS, PNG or JPEG file for import, refusing files over ``max_bytes`` (also after gunzip)
    and images over ``max_pixels`` before decoding them. Raises ImageFileError with the reason."""
    path = Path(path)
    try:
        content = _read_limited(path, max_bytes)
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
        wcs = _celestial_wcs(header)
        try:
            truth = truthfile.read_truth(hdul)
        except (ValueError, KeyError) as exc:
            raise ImageFileError(f"unusable truth extensions ({exc})") from None
    if truth is not None and truth.spiral.shape != (height, width):
        raise ImageFileError(f"truth masks are {truth.spiral.shape}, the image is {(height, width)}")

    flip = wcs is None or not north_is_up(wcs, (height, width))
    if flip:
        cube = cube[:, ::-1, :]
        wcs = flip_rows_wcs(wcs, height) if wcs is not None else None
        if truth is not None:
            truth = truthfile.Truth(spiral=truth.spiral[::-1].copy(), bar=truth.bar[::-1].copy(), params=truth.params)
    cube = np.ascontiguousarray(cube)
    try:
        if n_planes == 3:
            rgb = grz_to_rgb(cube, bands=bands)
            label = f"{''.join(bands)} asinh (Legacy Survey)"
        else:
            rgb = mono_to_rgb(cube[0])
            lo, hi = MONO_CLIP_PERCENTILES
            label = f"{bands[0] or 'single band'} asinh ({lo}-{hi} %)".strip()
    except ValueError as exc:
        raise ImageFileError(str(exc)) from None
    raw = _raw_fits(cube if n_planes == 3 else cube[0], wcs, bands, header.get("BUNIT"))
    return ImageData(rgb=rgb, bands=label, format="fits", wcs=wcs, raw_fits=raw, truth=truth, flipped=flip)


def _raw_fits(data: np.ndarray, wcs: WCS | None, bands: tuple[str, ...], bunit) -> bytes:
    header = wcs.to_header() if wcs is not None else fits.Header()
    for i, band in enumerate(bands):
        header[f"BAND{i}"] = band
    if bunit:
        header["BUNIT"] = bunit
    header["COMMENT"] = "evalsite: rows ordered as the stored RGB image (row 0 = north when the WCS is known)"
    buf = io.BytesIO()
    fits.PrimaryHDU(data=data.astype(np.float32), header=header).writeto(buf)
    return buf.getvalue()


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

