"""Survey styles: how the synthetic galaxies are turned into images (no Django).

A style fixes the image formation, not the galaxies' structure: the renderer (``classic``: the numpy
renderer of ``renderer.py``; ``galsim``: GalSim profiles with a Moffat or Kolmogorov PSF and Poisson
noise), the cutout's bands and pixel-scale range, the depth and seeing ranges, and the colour convention
of the GZ3D subject image. A survey takes one style or a weighted mix of styles; each galaxy's style is
drawn from (seed, index), so a survey stays deterministic per seed. See docs/synthetic.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Style:
    name: str
    engine: str  # "classic" or "galsim"
    bands: tuple  # the cutout's bands, in plane order
    subject_rgb: str  # colour convention of the GZ3D subject image: "legacy-grz", "lupton-gri", "grey"
    pixel_scale: tuple  # cutout arcsec / px: (low, high), drawn log-uniformly per galaxy
    psf_fwhm: tuple  # cutout PSF FWHM range [arcsec]
    depth: tuple  # sky noise relative to the reference noise of each band (>1 = shallower)
    description: str

    @property
    def variety(self) -> bool:
        """Whether the galaxies get the structural variety of ``population.vary_structure``."""
        return self.engine == "galsim"


STYLES = {
    "classic": Style("classic", "classic", ("g", "r", "z"), "legacy-grz", (0.262, 0.262), (0.95, 1.5), (1.0, 1.0),
                     "the numpy renderer: Legacy-Survey-like g,r,z at 0.262\"/px, fixed component colours"),
    "galsim-grz": Style("galsim-grz", "galsim", ("g", "r", "z"), "legacy-grz", (0.1, 0.5), (0.7, 2.0), (0.5, 2.5),
                        "GalSim, g,r,z cube (Legacy Survey colour mapping), 0.1-0.5\"/px"),
    "galsim-gri": Style("galsim-gri", "galsim", ("g", "r", "i"), "lupton-gri", (0.25, 0.5), (1.0, 2.0), (1.0, 3.0),
                        "GalSim, SDSS-like g,r,i cube (subject image: Lupton g,r,i composite), 0.25-0.5\"/px"),
    "galsim-grey": Style("galsim-grey", "galsim", ("r",), "grey", (0.1, 0.5), (0.7, 2.0), (0.5, 2.5),
                         "GalSim, a single r band (grey images), 0.1-0.5\"/px"),
}
# A style name or a mix: "name:weight,name:weight". The named mixes:
MIXES = {
    "mix": {"classic": 1, "galsim-grz": 2, "galsim-grey": 1},
    "all": {"classic": 1, "galsim-grz": 1, "galsim-gri": 1, "galsim-grey": 1},
}
DEFAULT_STYLE = "mix"  # what make_synthetic writes unless told otherwise
HELD_OUT_STYLE = "galsim-gri"  # the style the default mix leaves out, for out-of-style evaluation


class StyleError(ValueError):
    """An unknown style or a malformed mix; the message lists the known ones."""


def parse(spec: str) -> dict[str, float]:
    """A style spec -> {style name: weight}. ``"galsim-grz"``, ``"mix"``, ``"classic,galsim-grey"`` (equal
    weights) or ``"classic:1,galsim-grz:2"``."""
    text = (spec or "").strip()
    if text in MIXES:
        return {k: float(v) for k, v in MIXES[text].items()}
    weights: dict[str, float] = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        name, _, weight = part.partition(":")
        name = name.strip()
        if name not in STYLES:
            raise StyleError(f"unknown style {name!r}; known styles: {', '.join(STYLES)}; "
                             f"mixes: {', '.join(MIXES)} or name:weight,name:weight")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise StyleError(f"style weight {weight!r} of {name} is not a number") from None
        if not w > 0:
            raise StyleError(f"style weight of {name} must be > 0, got {weight}")
        weights[name] = weights.get(name, 0.0) + w
    if not weights:
        raise StyleError(f"no style given; known styles: {', '.join(STYLES)}; mixes: {', '.join(MIXES)}")
    return weights


def style_for(spec: str, seed: int, index: int) -> Style:
    """The style of galaxy ``index`` of a survey with this spec and seed (its own random stream)."""
    weights = parse(spec)
    if len(weights) == 1:
        return STYLES[next(iter(weights))]
    names = sorted(weights)
    p = np.array([weights[n] for n in names])
    rng = np.random.default_rng([seed, index, 6])
    return STYLES[names[int(rng.choice(len(names), p=p / p.sum()))]]


def names_in(spec: str) -> list[str]:
    return sorted(parse(spec))
