"""GalSim image formation for the synthetic survey's ``galsim-*`` styles (no Django).

The galaxy is the same structure the classic renderer draws (``population.GalaxyParams``), and its truth
masks come from that structure (``renderer.components`` -> ``renderer.truth_masks`` on the same grid),
never from the image. The image is formed by GalSim:

- the exponential disk (``galsim.Exponential``, inclined by a shear of the disk's axis ratio) and the
  Sersic bulge (``galsim.Sersic``) as analytic profiles, each with its own colour;
- the PSF: ``galsim.Moffat`` (beta 2.5-4.5) or ``galsim.Kolmogorov``, slightly elliptical, FWHM per
  galaxy; disk and bulge are convolved with it and integrated over the pixels by GalSim on the grid's WCS;
- the bar, the arms, a ring and the arms' star-forming knots, sampled from the structure at the pixel
  centres, each with its own colour, plus foreground stars and a neighbour galaxy: convolved with the
  same PSF drawn by GalSim over the pixels (an odd stamp, FFT); dust lanes absorb light (more in g than z);
- sky and Poisson noise (``galsim.PoissonNoise``) at the style's depth, from a seeded GalSim deviate.
"""
from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np
from scipy import signal

from evalcore.synthetic import renderer
from evalcore.synthetic.population import GalaxyParams

# sky noise of a pixel of 1" side [nmgy] per band at the reference depth (Legacy-Survey-like)
SKY_SIGMA = {"g": 0.0035 / 0.262, "r": 0.005 / 0.262, "i": 0.008 / 0.262, "z": 0.012 / 0.262}
# dust extinction A_band / A_r
EXTINCTION = {"g": 1.39, "r": 1.0, "i": 0.74, "z": 0.56}
DEFAULT_COLOURS = dict(renderer.COLOURS, ring=renderer.COLOURS["arms"])
GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3, maximum_fft_size=4096)


@dataclass(frozen=True)
class Seeing:
    """The PSF and the noise of one image."""

    psf: str  # "moffat" or "kolmogorov"
    fwhm: float  # arcsec
    beta: float  # Moffat index (unused for Kolmogorov)
    e1: float  # PSF ellipticity (shear components)
    e2: float
    depth: float  # sky noise relative to SKY_SIGMA
    gain: float  # counts per nmgy: sets the galaxy's own Poisson noise


def draw_seeing(rng: np.random.Generator, fwhm_range: tuple, depth_range: tuple, gain: float = 4000.0) -> Seeing:
    kolmogorov = rng.random() < 0.4
    return Seeing(psf="kolmogorov" if kolmogorov else "moffat", fwhm=float(rng.uniform(*fwhm_range)),
                  beta=float(rng.uniform(2.5, 4.5)), e1=float(rng.normal(0, 0.025)), e2=float(rng.normal(0, 0.025)),
                  depth=float(np.exp(rng.uniform(*np.log(depth_range)))), gain=float(gain))


def psf_profile(seeing: Seeing) -> galsim.GSObject:
    if seeing.psf == "kolmogorov":
        psf = galsim.Kolmogorov(fwhm=seeing.fwhm, gsparams=GSPARAMS)
    else:
        psf = galsim.Moffat(beta=seeing.beta, fwhm=seeing.fwhm, gsparams=GSPARAMS)
    return psf.shear(e1=seeing.e1, e2=seeing.e2)


def band_factor(band: str, colour: tuple) -> float:
    """Flux in ``band`` relative to r for a (g - r, r - z) colour [mag]; r - i is taken as 0.6 (r - z)."""
    g_r, r_z = colour
    return {"g": 10 ** (-0.4 * g_r), "r": 1.0, "i": 10 ** (0.4 * 0.6 * r_z), "z": 10 ** (0.4 * r_z)}[band]


def _beta(pa_deg: float) -> galsim.Angle:
    """A position angle east of north as GalSim's angle from the u (= east) axis towards v (= north)."""
    return (90.0 - pa_deg) * galsim.degrees


def _sersic_at(n: float, re: float, q: float, pa: float, ie: float) -> galsim.GSObject:
    """A Sersic profile whose surface brightness along its major axis at ``re`` is ``ie`` (nmgy / arcsec^2),
    major-axis effective radius ``re`` [arcsec], axis ratio ``q``, position angle ``pa``."""
    prof = galsim.Sersic(n=float(np.clip(n, 0.3, 6.2)), half_light_radius=re * np.sqrt(q), flux=1.0,
                         gsparams=GSPARAMS).shear(q=q, beta=_beta(pa))
    at_re = prof.xValue(galsim.PositionD(re * np.sin(np.radians(pa)), re * np.cos(np.radians(pa))))
    return prof * (ie / at_re)


def render(p: GalaxyParams, grid: renderer.Grid, bands: tuple, seeing: Seeing,
           rng: np.random.Generator) -> renderer.Rendering:
    """The galaxy on ``grid`` in ``bands`` (nmgy per pixel, (n_bands, H, W) float32) and its truth masks."""
    comp = renderer.components(p, grid)
    spiral, bar = renderer.truth_masks(comp)
    colours = dict(DEFAULT_COLOURS, **(p.colours or {}))
    h, w = grid.shape
    cd = grid.cd
    wcs = galsim.JacobianWCS(float(cd[0, 0]), float(cd[0, 1]), float(cd[1, 0]), float(cd[1, 1]))
    area = np.float32(grid.pixel_scale ** 2)
    ci = p.cos_inclination

    disk_flux = 2 * np.pi * p.disk_i0 * p.disk_scale**2 * ci
    disk = galsim.Exponential(scale_radius=p.disk_scale * np.sqrt(ci), flux=disk_flux, gsparams=GSPARAMS)
    disk = disk.shear(q=ci, beta=_beta(p.pa))
    bulge = _sersic_at(p.bulge_n, p.bulge_re, p.bulge_axis_ratio, p.pa, p.bulge_ie)
    psf = psf_profile(seeing)
    centre = galsim.PositionD(grid.x0, grid.y0)
    # the analytic profiles, convolved with the PSF and integrated over the pixels by GalSim (once each:
    # the PSF is the same in every band, the colours scale them)
    drawn = {}
    for name, prof in (("disk", disk), ("bulge", bulge)):
        out = galsim.ImageF(w, h, wcs=wcs, xmin=0, ymin=0)
        galsim.Convolve([prof, psf], gsparams=GSPARAMS).drawImage(image=out, center=centre)
        drawn[name] = out.array.astype(np.float32)
    kernel = _psf_kernel(psf, wcs, grid)

    # the sampled components (bar, arms, ring, knots), the neighbour, the stars and the dust's absorption
    mapped = {"bar": comp.bar, "arms": comp.arms}
    if comp.ring is not None:
        mapped["ring"] = comp.ring
    tau = None
    if p.dust is not None or p.neighbour is not None:
        east, north = grid.sky()
    if p.dust is not None:
        _, _, xg, yg = renderer.sky_to_disk(p, east, north)
        tau = renderer.dust_depth(p, xg, yg)
    points = np.zeros((len(bands), h, w), np.float32)  # knots and stars, nmgy per band
    k_east, k_north = renderer.knot_positions(p)
    fluxes = []
    if len(k_east):
        fluxes.append((k_east, k_north, p.arms.knots[:, 3], [colours["knots"]] * len(k_east)))
    if p.stars:
        fluxes.append(([s.east for s in p.stars], [s.north for s in p.stars], [s.flux_r for s in p.stars],
                       [(s.g_r, s.r_z) for s in p.stars]))
    for e, n, flux_r, cols in fluxes:
        x, y = grid.to_pixels(e, n)
        per_band = np.array([[f * band_factor(b, c) for b in bands] for f, c in zip(flux_r, cols)])
        per_band = np.pad(per_band, ((0, 0), (0, 3 - len(bands))))  # the deposit fills three planes
        three = np.zeros((3, h, w), np.float32)
        renderer._deposit(three, x, y, per_band)
        points += three[:len(bands)]
    neighbour = None
    if p.neighbour is not None:
        neighbour = renderer._neighbour_light(p, grid, east, north) * area

    seed = int(rng.integers(1, 2**31 - 1))
    planes = np.empty((len(bands), h, w), np.float32)
    for i, band in enumerate(bands):
        f = {name: np.float32(band_factor(band, colours[name])) for name in colours}
        sampled = sum(m * f[name] for name, m in mapped.items()) * area
        if tau is not None:
            light = (comp.disk * f["disk"] + comp.bulge * f["bulge"]) * area + sampled
            sampled = sampled - light * (1 - np.exp(-tau * np.float32(EXTINCTION[band])))
        sampled = sampled + points[i]
        if neighbour is not None:
            sampled = sampled + neighbour * np.float32(band_factor(band, (p.neighbour.g_r, p.neighbour.r_z)))
        image = drawn["disk"] * f["disk"] + drawn["bulge"] * f["bulge"]
        image += signal.fftconvolve(sampled, kernel, mode="same").astype(np.float32)
        # sky and Poisson noise, in counts
        gain = seeing.gain
        sky = (SKY_SIGMA[band] * seeing.depth * grid.pixel_scale) ** 2 * gain * gain
        counts = galsim.ImageF(np.maximum(image, 0) * np.float32(gain), xmin=0, ymin=0)
        counts.addNoise(galsim.PoissonNoise(galsim.BaseDeviate(seed + 7919 * i), sky_level=sky))
        planes[i] = counts.array / np.float32(gain)
    return renderer.Rendering(bands=planes, spiral=spiral, bar=bar, psf_fwhm=seeing.fwhm)


def _psf_kernel(psf: galsim.GSObject, wcs, grid: renderer.Grid) -> np.ndarray:
    """The PSF integrated over the pixels (GalSim), on an odd-sized stamp centred on its middle pixel,
    normalised to 1: the kernel the sampled components are convolved with."""
    half = int(min(max(grid.shape) // 2, np.ceil(6 * psf.calculateFWHM() / grid.pixel_scale) + 4))
    stamp = galsim.ImageF(2 * half + 1, 2 * half + 1, wcs=wcs)
    psf.drawImage(image=stamp)
    kernel = stamp.array.astype(np.float64)
    return kernel / kernel.sum()
