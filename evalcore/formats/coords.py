"""World coordinates of image grids: WCS from headers and header text, pixel scales, north-up grids (no Django).

Pixels are 0-based with row 0 at the top of the stored picture; a FITS pixel y is the array row + 1. The
stored images are north-up: row 0 is north, east is to the left, as on the sky.
"""
from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales


class WCSError(ValueError):
    """WCS keywords that astropy cannot use; the message says why."""


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
    """The celestial WCS stored as header text by an importer (cards separated by newlines, or 80-character
    cards run together); None when the text is empty or holds no celestial WCS. Raises WCSError when its
    WCS keywords are unusable."""
    if not text or not text.strip():
        return None
    try:
        header = fits.Header.fromstring(text, sep="\n" if "\n" in text else "")
    except Exception as exc:  # astropy raises several types for a garbled header
        raise WCSError(f"unusable WCS header text ({exc})") from None
    return celestial_wcs(header)


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


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The 2-D celestial WCS of a FITS header (a GZ3D image header has NAXIS 3 for its RGB planes); None
    when the header has none. Raises WCSError when its WCS keywords are unusable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, naxis=2)
        except Exception as exc:  # astropy raises many types for broken WCS keywords
            raise WCSError(f"unusable WCS ({exc})") from None
    return w.celestial if w.has_celestial else None
