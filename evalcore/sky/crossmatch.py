"""Sky cross-matching of two position lists with astropy (no Django).

Used by the catalogue join (fill redshifts, axis ratios) and by the comparison of measurements with
external catalogues (e.g. Hoyle et al. 2011 bar lengths). Every source gets an explicit outcome, so
reports can list what did not match and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky

MATCHED = "matched"
NO_MATCH = "no match"
AMBIGUOUS = "ambiguous"
NO_POSITION = "no position"


@dataclass
class Match:
    index: int  # position in the first list
    status: str  # MATCHED, NO_MATCH, AMBIGUOUS or NO_POSITION
    other: int | None = None  # index in the second list when MATCHED
    separation_arcsec: float | None = None
    candidates: list[int] = field(default_factory=list)  # every index within the radius, nearest first

    @property
    def reason(self) -> str:
        if self.status == AMBIGUOUS:
            return f"{len(self.candidates)} catalogue rows within the radius"
        return self.status


def crossmatch(ra, dec, other_ra, other_dec, radius_arcsec: float = 10.0,
               ambiguous_ratio: float = 0.0) -> list[Match]:
    """Match each (ra, dec) [deg] to the nearest (other_ra, other_dec) within ``radius_arcsec``.

    More than one candidate within the radius is AMBIGUOUS unless the nearest is closer than
    ``ambiguous_ratio`` times the second nearest (0 = any second candidate makes it ambiguous).
    NaN positions on the first list get NO_POSITION; NaN rows of the second list are never matched.
    """
    if radius_arcsec <= 0:
        raise ValueError(f"the match radius must be positive, got {radius_arcsec} arcsec")
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    other_ra, other_dec = np.asarray(other_ra, float), np.asarray(other_dec, float)
    ok = np.isfinite(ra) & np.isfinite(dec)
    ok_other = np.isfinite(other_ra) & np.isfinite(other_dec)
    results = [Match(i, MATCHED if ok[i] else NO_POSITION) for i in range(len(ra))]
    if not ok.any() or not ok_other.any():
        for m in results:
            if m.status == MATCHED:
                m.status = NO_MATCH
        return results
    idx_self, idx_other = np.flatnonzero(ok), np.flatnonzero(ok_other)
    c1 = SkyCoord(ra[idx_self] * u.deg, dec[idx_self] * u.deg)
    c2 = SkyCoord(other_ra[idx_other] * u.deg, other_dec[idx_other] * u.deg)
    i1, i2, sep, _ = search_around_sky(c1, c2, radius_arcsec * u.arcsec)
    sep = sep.to_value(u.arcsec)
    found: dict[int, list[tuple[float, int]]] = {}
    for a, b, s in zip(i1, i2, sep):
        found.setdefault(int(idx_self[a]), []).append((float(s), int(idx_other[b])))
    for m in results:
        if m.status != MATCHED:
            continue
        cands = sorted(found.get(m.index, []))
        m.candidates = [b for _, b in cands]
        if not cands:
            m.status = NO_MATCH
        elif len(cands) > 1 and cands[0][0] >= ambiguous_ratio * cands[1][0]:
            m.status = AMBIGUOUS
        else:
            m.other, m.separation_arcsec = cands[0][1], cands[0][0]
    return results
