"""Angular -> physical sizes with astropy's flat Lambda-CDM (no Django).

Default parameters are the reference study's: H0 = 67.8 km/s/Mpc, Om0 = 0.308. A size of theta arcsec at
redshift z spans D_A(z) * theta[rad] kpc, D_A being the angular-diameter distance. (The study's code
divided by an unexplained 117 instead of using arcsec -> rad = 1 / 206264.8; we do the physics.)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM


@dataclass(frozen=True)
class CosmologyParams:
    H0: float = 67.8  # km / s / Mpc
    Om0: float = 0.308

    def __post_init__(self):
        if not (np.isfinite(self.H0) and self.H0 > 0):
            raise ValueError(f"H0 must be a positive number of km/s/Mpc, got {self.H0}")
        if not (np.isfinite(self.Om0) and 0 <= self.Om0 <= 1):
            raise ValueError(f"Om0 must be in [0, 1] for a flat universe, got {self.Om0}")

    def to_dict(self) -> dict:
        return {"model": "FlatLambdaCDM", "H0": self.H0, "Om0": self.Om0}


DEFAULT_COSMOLOGY = CosmologyParams()


@lru_cache(maxsize=8)
def _flat_lcdm(params: CosmologyParams) -> FlatLambdaCDM:
    return FlatLambdaCDM(H0=params.H0, Om0=params.Om0)


def redshift_problem(redshift) -> str | None:
    """Why ``redshift`` cannot give a physical scale, or None when it can."""
    if redshift is None:
        return "no redshift: lengths in arcsec only"
    try:
        z = float(redshift)
    except (TypeError, ValueError):
        return f"redshift {redshift!r} is not a number: lengths in arcsec only"
    if not np.isfinite(z) or z <= 0:
        return f"redshift {z} is not positive: lengths in arcsec only"
    return None


def kpc_per_arcsec(redshift: float, cosmology: CosmologyParams = DEFAULT_COSMOLOGY) -> float:
    """Proper kpc spanned by one arcsec at ``redshift`` (kpc / arcsec)."""
    problem = redshift_problem(redshift)
    if problem:
        raise ValueError(problem.split(":")[0])
    return float(_flat_lcdm(cosmology).kpc_proper_per_arcmin(float(redshift)).to_value(u.kpc / u.arcsec))
