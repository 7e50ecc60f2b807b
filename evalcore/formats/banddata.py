"""Band data: the flux planes behind a stored image, as a FITS file on that image's grid (no Django).

An imported FITS image keeps its band data beside the RGB picture (``band_fits_bytes``); pages and
stretches read them back with ``read_band_data``, rows ordered as the stored picture (row 0 = north).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning


class BandDataError(ValueError):
    """Band data that cannot be read or do not fit the image; the message says why."""


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
            raise BandDataError(f"unknown band {band!r}; this image has {', '.join(self.names)} or 'mean'") from None
        if not 0 <= index < len(self.names):
            raise BandDataError(f"band index {index} out of range: this image has {len(self.names)} band(s)")
        return self.planes[index]


def _rows_run_north(header) -> bool | None:
    """True if increasing row index moves north according to the header's WCS; None without a WCS."""
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
    try:
        hdul = fits.open(io.BytesIO(fits_bytes), memmap=False)
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for a bad file
        raise BandDataError(f"raw file is not readable FITS: {exc}") from exc
    with hdul:
        hdu = next((h for h in hdul if h.data is not None and getattr(h.data, "ndim", 0) in (2, 3)), None)
        if hdu is None:
            raise BandDataError("raw FITS file has no 2-D image or 3-D cube")
        data = np.asarray(hdu.data)
        if not np.issubdtype(data.dtype, np.number):
            raise BandDataError(f"raw FITS data are not numeric ({data.dtype})")
        if data.ndim == 3 and data.shape[:2] == tuple(shape) and data.shape[2] in (3, 4):
            raise BandDataError("raw FITS data are RGB pixels (H, W, 3), not band data")
        cube = data[np.newaxis] if data.ndim == 2 else data
        if cube.shape[1:] != tuple(shape):
            raise BandDataError(
                f"raw band data are {cube.shape[2]}x{cube.shape[1]} px but the image is {shape[1]}x{shape[0]} px"
            )
        header = hdu.header
        names = tuple(str(header.get(f"BAND{i}", f"band {i}")).strip() or f"band {i}" for i in range(cube.shape[0]))
        flip = bool(_rows_run_north(header))
    planes = cube.astype(np.float32)
    if flip:
        planes = planes[:, ::-1, :]
    return BandData(planes=np.ascontiguousarray(planes), names=names, flipped=flip)


def band_fits_bytes(data: np.ndarray, wcs: WCS | None, bands: tuple[str, ...], bunit) -> bytes:
    """Band data ((H, W) or (n_bands, H, W)) as a FITS file on the stored image's grid: WCS, ``BAND<i>``
    names and ``BUNIT``; ``read_band_data`` reads it back."""
    header = wcs.to_header() if wcs is not None else fits.Header()
    for i, band in enumerate(bands):
        header[f"BAND{i}"] = band
    if bunit:
        header["BUNIT"] = bunit
    header["COMMENT"] = "evalsite: rows ordered as the stored RGB image (row 0 = north when the WCS is known)"
    buf = io.BytesIO()
    fits.PrimaryHDU(data=data.astype(np.float32), header=header).writeto(buf)
    return buf.getvalue()
