"""Pictures for people: astronomical stretches of galaxy images and colour overlays of masks (no Django).

Images are shown as one grey plane: the raw band data when an image has them (mean of the bands, or one
band), otherwise the luminance of the stored RGB pixels. The plane is clipped at two percentiles of its
finite pixels and stretched (linear, asinh or log) to [0, 1]. Masks are coloured by fraction with a
perceptually uniform, colour-blind-safe colormap; pixels at fraction 0 are transparent, so opacity is
left to the viewer. Row 0 of every array is north, as in the stored images.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

STRETCHES = ("linear", "asinh", "log")
# viridis and magma are perceptually uniform; cividis is tuned for red-green colour blindness as well.
COLORMAPS = ("viridis", "cividis", "magma")
DEFAULT_STRETCH = "asinh"
DEFAULT_CLIP = (0.5, 99.5)  # percent
ASINH_SOFTENING = 0.1  # fraction of the clipped range where asinh turns from linear to logarithmic
LOG_SCALE = 1000.0
# Rec. 709 luma weights: the grey a person would see in the RGB picture.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], np.float32)


class RenderError(ValueError):
    """Input that cannot be rendered, with the reason."""


# --- stretches ------------------------------------------------------------------------------------------
def clip_limits(data: np.ndarray, low_pct: float = DEFAULT_CLIP[0],
                high_pct: float = DEFAULT_CLIP[1]) -> tuple[float, float]:
    """Values at the ``low_pct`` and ``high_pct`` percentiles (0..100) of the finite pixels.

    A flat (or all non-finite) plane gives a range of width 1 so stretching never divides by zero.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise RenderError(f"clip percentiles must satisfy 0 <= low < high <= 100, got {low_pct}, {high_pct}")
    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def stretch(data: np.ndarray, *, kind: str = DEFAULT_STRETCH, low_pct: float = DEFAULT_CLIP[0],
            high_pct: float = DEFAULT_CLIP[1]) -> np.ndarray:
    """A 2-D plane (any units) -> float32 in [0, 1] after percentile clipping and the named stretch.

    linear: x; asinh: asinh(x / a) / asinh(1 / a) with a = 0.1; log: log10(1 + 1000 x) / log10(1001),
    where x is the plane clipped to [low, high] percentiles and scaled to [0, 1]. Non-finite pixels -> 0.
    """
    if kind not in STRETCHES:
        raise RenderError(f"unknown stretch {kind!r}; choose one of {', '.join(STRETCHES)}")
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim != 2:
        raise RenderError(f"a stretch works on a 2-D plane, got shape {arr.shape}")
    lo, hi = clip_limits(arr, low_pct, high_pct)
    finite = np.isfinite(arr)
    with np.errstate(invalid="ignore"):
        x = np.clip((arr - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
    x = np.where(finite, x, 0.0).astype(np.float32)
    if kind == "asinh":
        x = np.arcsinh(x / ASINH_SOFTENING) / np.arcsinh(1.0 / ASINH_SOFTENING)
    elif kind == "log":
        x = np.log10(1.0 + LOG_SCALE * x) / np.log10(1.0 + LOG_SCALE)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) pixels -> (H, W) float32 luma in the pixels' own units (0..255 for uint8)."""
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        return arr.astype(np.float32)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return arr[..., :3].astype(np.float32) @ LUMA_WEIGHTS
    raise RenderError(f"expected (H, W) or (H, W, 3) pixels, got shape {arr.shape}")


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 0..255 (rounded)."""
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- band data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BandData:
    """Band planes on the stored image's grid, row 0 = north."""

    planes: np.ndarray  # (n_bands, H, W) float32
    names: tuple[str, ...]
    flipped: bool  # True when the file's rows ran south -> north and were reversed

    def plane(self, band: str | int | None = None) -> np.ndarray:
        """One band by index or name, or the mean of the bands (``None`` / ``"mean"``)."""
        if band is None or band == "mean":
            with np.errstate(invalid="ignore"):
                return np.nanmean(np.where(np.isfinite(self.planes), self.planes, np.nan), axis=0)
        if isinstance(band, str) and band in self.names:
            return self.planes[self.names.index(band)]
        try:
            index = int(band)
        except (TypeError, ValueError):
            raise RenderError(f"unknown band {band!r}; this image has {', '.join(self.names)} or 'mean'") from None
        if not 0 <= index < len(self.names):
            raise RenderError(f"band index {index} out of range: this image has {len(self.names)} band(s)")
        return self.planes[index]


def _rows_run_north(header) -> bool | None:
    """True if increasing row index moves north according to the header's WCS; None without a WCS."""
    from astropy.wcs import WCS, FITSFixedWarning  # astropy import is slow; only pay for it here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # noqa: BLE001 - an unreadable WCS means "no WCS", the data stay usable
            return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    lat_axis = celestial.wcs.lat
    d_lat_d_row = celestial.pixel_scale_matrix[lat_axis, 1]
    if d_lat_d_row == 0:
        return None
    return bool(d_lat_d_row > 0)


def read_band_data(fits_bytes: bytes, *, shape: tuple[int, int]) -> BandData:
    """Read band data from FITS bytes and put them on the stored image's (H, W) grid, row 0 = north.

    The first HDU holding a 2-D plane or a (n_bands, H, W) cube is used. When its WCS says rows run
    south -> north (the usual FITS display convention), the rows are reversed. Band names come from the
    ``BAND0``, ``BAND1``, ... keywords (Legacy Survey cutouts) when present. An (H, W, 3) array is RGB
    pixels, not band data, and is refused, as is a plane whose size differs from ``shape`` (px).
    """
    from astropy.io import fits

    try:
        hdul = fits.open(io.BytesIO(fits_bytes), memmap=False)
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for a bad file
        raise RenderError(f"raw file is not readable FITS: {exc}") from exc
    with hdul:
        hdu = next((h for h in hdul if h.data is not None and getattr(h.data, "ndim", 0) in (2, 3)), None)
        if hdu is None:
            raise RenderError("raw FITS file has no 2-D image or 3-D cube")
        data = np.asarray(hdu.data)
        if not np.issubdtype(data.dtype, np.number):
            raise RenderError(f"raw FITS data are not numeric ({data.dtype})")
        if data.ndim == 3 and data.shape[:2] == tuple(shape) and data.shape[2] in (3, 4):
            raise RenderError("raw FITS data are RGB pixels (H, W, 3), not band data")
        cube = data[np.newaxis] if data.ndim == 2 else data
        if cube.shape[1:] != tuple(shape):
            raise RenderError(
                f"raw band data are {cube.shape[2]}x{cube.shape[1]} px but the image is {shape[1]}x{shape[0]} px"
            )
        header = hdu.header
        names = tuple(str(header.get(f"BAND{i}", f"band {i}")).strip() or f"band {i}" for i in range(cube.shape[0]))
        flip = bool(_rows_run_north(header))
    planes = cube.astype(np.float32)
    if flip:
        planes = planes[:, ::-1, :]
    return BandData(planes=np.ascontiguousarray(planes), names=names, flipped=flip)


# --- colormaps and overlays -----------------------------------------------------------------------------
@lru_cache(maxsize=len(COLORMAPS))
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a colormap in COLORMAPS, index = round(255 * value)."""
    if name not in COLORMAPS:
        raise RenderError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    import matplotlib  # only the colormap registry: no pyplot, no backend

    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    lut = to_uint8(rgba[:, :3])
    lut.setflags(write=False)
    return lut


def colormap_stops(name: str, n: int = 9) -> list[str]:
    """``n`` evenly spaced colours of a colormap as '#rrggbb', for a CSS gradient legend."""
    lut = colormap_lut(name)
    idx = np.rint(np.linspace(0, 255, n)).astype(int)
    return ["#{:02x}{:02x}{:02x}".format(*lut[i]) for i in idx]


def overlay_rgba(fractions: np.ndarray, *, cmap: str = "viridis") -> np.ndarray:
    """Fraction map in [0, 1] -> (H, W, 4) uint8: colour by fraction, opaque where > 0, clear at 0."""
    f = np.asarray(fractions, dtype=np.float32)
    if f.ndim != 2:
        raise RenderError(f"a fraction map is 2-D, got shape {f.shape}")
    f = np.where(np.isfinite(f), np.clip(f, 0.0, 1.0), 0.0)
    lut = colormap_lut(cmap)
    out = np.empty(f.shape + (4,), np.uint8)
    out[..., :3] = lut[np.rint(f * 255.0).astype(np.intp)]
    out[..., 3] = np.where(f > 0, 255, 0).astype(np.uint8)
    return out


# --- output ---------------------------------------------------------------------------------------------
def downscale(pixels: np.ndarray, max_size: int, *, smooth: bool = True) -> np.ndarray:
    """Shrink so the longer side is at most ``max_size`` px (never enlarges). ``smooth=False`` keeps
    exact values (nearest neighbour), as masks need."""
    arr = np.asarray(pixels)
    height, width = arr.shape[:2]
    if max_size < 1:
        raise RenderError(f"size must be at least 1 px, got {max_size}")
    if max(height, width) <= max_size:
        return arr
    scale = max_size / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(arr).resize(size, resample))


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (H, W), (H, W, 3) or (H, W, 4) -> PNG bytes (fast compression: these are made per request)."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise RenderError(f"a PNG is made from uint8 (H, W[, 3|4]) pixels, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG (or any Pillow-readable) bytes -> pixel array as stored."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def render_image(*, rgb: np.ndarray, bands: BandData | None = None, band: str | int | None = None,
                 kind: str = DEFAULT_STRETCH, low_pct: float = DEFAULT_CLIP[0],
                 high_pct: float = DEFAULT_CLIP[1]) -> np.ndarray:
    """The grey picture of an image: the band data when given (one band or their mean), else the luma of
    ``rgb``; clipped and stretched. Returns (H, W) uint8."""
    plane = bands.plane(band) if bands is not None else luminance(rgb)
    return to_uint8(stretch(plane, kind=kind, low_pct=low_pct, high_pct=high_pct))
