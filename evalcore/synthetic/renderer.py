"""Render a synthetic galaxy onto any celestial pixel grid: g, r, z band images and its true masks (no Django).

Model (r-band surface brightness, nmgy / arcsec^2, in the disk plane unless said otherwise):

- disk: exponential, I0 exp(-r / h);
- bulge: Sersic profile on the sky, flattened along the disk's position angle;
- bar: a boxy generalised ellipse with a slowly falling profile and a soft edge at its half-length;
- arms: m logarithmic spirals, theta_k(r) = phi_k + winding ln(r / r0) / tan(pitch) (+ small irregular
  wiggles), a Gaussian cross-section of width w(r), brightness A_k x disk(r) x taper x patchiness,
  starting at the bar ends when there is a bar; unresolved star-forming knots along the arms;
- foreground stars and, sometimes, a neighbour galaxy (neither is part of the truth).

Colours: bluer arms and knots, redder bulge and bar. The image is blurred by the PSF (a Gaussian core
with a faint broad wing) and gets sky and Poisson noise. Grids come from a WCS, so the same galaxy can be
rendered on the GZ3D subject grid and on the survey cutout grid and agrees between them.

Truth rule ("the component dominates the local light"), on the noiseless r-band model before the PSF:
a pixel is *bar* where the bar is at least as bright as disk + arms (the bulge is left out: it sits in
front of the bar's centre by construction), and *spiral* where the arms supply at least half the light of
disk + bulge + bar (a third of the total) and the pixel is not bar. Both require the galaxy's total
surface brightness to be above 24.0 r-mag / arcsec^2 (where arms fade into the sky no one can see them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from evalcore.synthetic.population import GalaxyParams

BANDS = ("g", "r", "z")
SB_LIMIT_MAG = 24.0  # r mag / arcsec^2
SB_LIMIT = 10 ** ((22.5 - SB_LIMIT_MAG) / 2.5)  # nmgy / arcsec^2
ARM_SHARE = 0.5  # arms / (disk + bulge + bar) at which the arms dominate
# component colours (g - r, r - z) in mag
COLOURS = {"disk": (0.68, 0.45), "bulge": (0.92, 0.58), "bar": (0.86, 0.54), "arms": (0.42, 0.28),
           "knots": (0.05, -0.05)}
TABLE_SIZE = 4096


@dataclass(frozen=True)
class Conditions:
    """How an instrument sees: PSF FWHM [arcsec], sky noise per arcsec of pixel side [nmgy] per band, gain."""

    psf_fwhm: float
    sky_sigma: tuple  # g, r, z: noise of a pixel of 1" side, nmgy; a pixel of side s has sigma * s
    gain: float  # counts per nmgy (sets the Poisson noise of the galaxy itself)
    wing: float = 0.08  # fraction of the PSF in a broad wing (3x the core width)


# Legacy Surveys DR8-like (grz, 0.262"/px) and SDSS-like (the GZ3D subject images, shallower)
LEGACY = (0.0035 / 0.262, 0.005 / 0.262, 0.012 / 0.262)
SDSS = tuple(2.5 * s for s in LEGACY)


def band_factors(colour: tuple[float, float]) -> np.ndarray:
    """Flux in g, r, z relative to r for a (g - r, r - z) colour in mag."""
    g_r, r_z = colour
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_z)], np.float32)


@dataclass(frozen=True)
class Grid:
    """A pixel grid on the sky around a galaxy: shape (H, W), the galaxy centre at pixel (x0, y0)
    (0-based; x along a row, y down the rows) and ``cd``: (east, north) [arcsec] = cd @ (dx, dy) [px]."""

    shape: tuple
    x0: float
    y0: float
    cd: np.ndarray

    @property
    def pixel_scale(self) -> float:
        """arcsec / px."""
        return float(np.sqrt(abs(np.linalg.det(self.cd))))

    @classmethod
    def from_wcs(cls, wcs, shape, ra: float, dec: float) -> Grid:
        """The grid of a celestial astropy WCS (any orientation) for a galaxy at (ra, dec) [deg]."""
        if not (wcs.naxis == 2 and wcs.has_celestial and wcs.wcs.lng == 0):
            wcs = wcs.celestial  # a copy of the WCS: only needed when there is more than (lon, lat)
        eps = 1.0 / 3600  # 1 arcsec, small enough that TAN distortion is negligible
        world = np.array([[ra, dec], [ra + eps / np.cos(np.radians(dec)), dec], [ra, dec + eps]])
        pix = wcs.wcs_world2pix(world, 0)
        jac = np.column_stack([pix[1] - pix[0], pix[2] - pix[0]])  # px per arcsec east / north
        return cls(shape=tuple(int(s) for s in shape), x0=float(pix[0, 0]), y0=float(pix[0, 1]),
                   cd=np.linalg.inv(jac))

    def sky(self) -> tuple[np.ndarray, np.ndarray]:
        """(east, north) offsets [arcsec] of every pixel centre from the galaxy, float32 (H, W)."""
        h, w = self.shape
        dx = (np.arange(w, dtype=np.float32) - np.float32(self.x0))[None, :]
        dy = (np.arange(h, dtype=np.float32) - np.float32(self.y0))[:, None]
        c = self.cd.astype(np.float32)
        return c[0, 0] * dx + c[0, 1] * dy, c[1, 0] * dx + c[1, 1] * dy

    def to_pixels(self, east, north) -> tuple[np.ndarray, np.ndarray]:
        """Sky offsets [arcsec] -> pixel (x, y), 0-based."""
        jac = np.linalg.inv(self.cd)
        east, north = np.asarray(east, np.float64), np.asarray(north, np.float64)
        return self.x0 + jac[0, 0] * east + jac[0, 1] * north, self.y0 + jac[1, 0] * east + jac[1, 1] * north


# --- geometry between the disk plane and the sky ------------------------------------------------------
def disk_to_sky(p: GalaxyParams, xg, yg):
    """Disk-plane coordinates [arcsec] -> (east, north) on the sky [arcsec]."""
    s, c = np.sin(np.radians(p.pa)), np.cos(np.radians(p.pa))
    a, b = xg, np.asarray(yg) * p.cos_inclination
    return a * s + b * c, a * c - b * s


def sky_to_disk(p: GalaxyParams, east, north):
    """(east, north) [arcsec] -> (a, b) along the major / minor axis on the sky and (xg, yg) in the disk."""
    s, c = np.float32(np.sin(np.radians(p.pa))), np.float32(np.cos(np.radians(p.pa)))
    a = east * s + north * c
    b = east * c - north * s
    return a, b, a, b / np.float32(p.cos_inclination)


def arm_width(p: GalaxyParams, r):
    """Gaussian sigma across an arm [arcsec] at disk radius r [arcsec]: arms widen outward."""
    return p.arms.width * (0.6 + 0.4 * np.asarray(r) / p.disk_scale)


def arm_azimuth(p: GalaxyParams, k: int, r) -> np.ndarray:
    """Azimuth [rad] in the disk plane of arm k's ridge at radius r [arcsec]."""
    arms = p.arms
    lr = np.log(np.maximum(np.asarray(r, np.float64), 1e-3) / arms.start)
    if arms.pitch_slope:
        theta = np.radians(arms.phases[k]) + arms.winding * _winding_integral(p, lr)
    else:
        theta = np.radians(arms.phases[k]) + arms.winding * lr / np.tan(np.radians(arms.pitch))
    for amp, freq, phase in arms.wiggles[k]:
        theta = theta + amp * np.sin(freq * lr + phase)
    return theta


def _pitch_limits(p: GalaxyParams) -> tuple[float, float]:
    """ln(r / start) range over which a changing pitch changes; outside it the pitch stays constant."""
    return -1.0, float(np.log(max(p.arms.ends) / p.arms.start)) + 0.5


def pitch_at(p: GalaxyParams, r) -> np.ndarray:
    """Local pitch angle [deg] at disk radius r [arcsec] (constant for a logarithmic spiral)."""
    arms = p.arms
    lr = np.log(np.maximum(np.asarray(r, np.float64), 1e-3) / arms.start)
    lo, hi = _pitch_limits(p)
    return arms.pitch + arms.pitch_slope * np.clip(lr, lo, hi)


def _winding_integral(p: GalaxyParams, lr) -> np.ndarray:
    """Integral of cot(pitch) d ln r from the arms' start to ln(r / start) = lr, pitch = pitch0 + slope lr
    inside ``_pitch_limits`` and constant outside (exact, piecewise)."""
    arms = p.arms
    lo, hi = _pitch_limits(p)
    s = np.radians(arms.pitch_slope)
    p0 = np.radians(arms.pitch)
    lc = np.clip(lr, lo, hi)
    inside = np.log(np.sin(p0 + s * lc) / np.sin(p0)) / s
    return inside + (lr - lc) / np.tan(p0 + s * lc)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def arm_strength(p: GalaxyParams, k: int, r) -> np.ndarray:
    """Arm k's ridge brightness relative to the disk at radius r [arcsec] (amplitude x taper x patches)."""
    arms, h = p.arms, p.disk_scale
    r = np.asarray(r, np.float64)
    taper = _smoothstep((r - arms.start) / (0.35 * h)) * (1 - _smoothstep((r - arms.ends[k] + 0.8 * h) / (0.8 * h)))
    lr = np.log(np.maximum(r, 1e-3) / arms.start)
    patches = np.ones_like(r)
    for amp, freq, phase in arms.patches[k]:
        patches = patches + amp * np.sin(freq * lr + phase)
    return arms.amplitudes[k] * taper * np.clip(patches, 0.15, None)


def disk_light(p: GalaxyParams, r):
    return p.disk_i0 * np.exp(-np.asarray(r) / p.disk_scale)


def bulge_light(p: GalaxyParams, a, b):
    n = p.bulge_n
    bn = 2 * n - 1 / 3 + 0.009876 / n
    rb = np.sqrt(a * a + (b / np.float32(p.bulge_axis_ratio)) ** 2) / np.float32(p.bulge_re)
    return np.float32(p.bulge_ie) * np.exp(np.float32(-bn) * (rb ** np.float32(1 / n) - 1))


def bar_light(p: GalaxyParams, xg, yg):
    bar = p.bar
    ca, sa = np.float32(np.cos(np.radians(bar.angle))), np.float32(np.sin(np.radians(bar.angle)))
    xb = np.abs(xg * ca + yg * sa) / np.float32(bar.half_length)
    yb = np.abs(yg * ca - xg * sa) / np.float32(bar.half_length * bar.axis_ratio)
    c = np.float32(bar.boxiness)
    m = (xb**c + yb**c) ** np.float32(1 / c)
    end = bar.end_contrast * p.disk_i0 * np.exp(-bar.half_length / p.disk_scale)
    edge = np.clip((m - 1) / np.float32(0.07), -30, 30)
    return np.float32(2 * end) * np.exp(np.float32(-0.7) * (m - 1)) / (1 + np.exp(edge))


def _arm_tables(p: GalaxyParams) -> dict:
    """Per-radius arm quantities on a fine radial table, computed once per galaxy (every grid and the
    volunteers share them): radius step, 1 / (cross-arm scale), ridge azimuth and brightness per arm."""
    cache = p.cache.get("arm_tables")
    if cache is not None:
        return cache
    arms = p.arms
    r_max = max(arms.ends) + p.disk_scale
    radii = np.linspace(0, r_max, TABLE_SIZE)
    disk = disk_light(p, radii)
    cache = {
        "r_max": r_max,
        "inv_w": ((np.sin(np.radians(pitch_at(p, radii))) if arms.pitch_slope else np.sin(np.radians(arms.pitch)))
                  / arm_width(p, radii)).astype(np.float32),
        "ridge": [arm_azimuth(p, k, radii).astype(np.float32) for k in range(arms.m)],
        "amp": [(arm_strength(p, k, radii) * disk).astype(np.float32) for k in range(arms.m)],
    }
    p.cache["arm_tables"] = cache
    return cache


def arms_light(p: GalaxyParams, xg, yg, r):
    """Summed arm light (nmgy / arcsec^2) at disk-plane positions; per-radius terms come from tables."""
    out = np.zeros_like(r)
    if p.arms.m == 0:
        return out
    t = _arm_tables(p)
    r_max = t["r_max"]
    index = np.minimum((r * np.float32((TABLE_SIZE - 1) / r_max)).astype(np.int32), TABLE_SIZE - 1)
    theta = np.arctan2(yg, xg)
    inv_w = t["inv_w"][index] * r
    two_pi, pi = np.float32(2 * np.pi), np.float32(np.pi)
    for ridge, amp in zip(t["ridge"], t["amp"]):
        d = (np.mod(theta - ridge[index] + pi, two_pi) - pi) * inv_w
        out += amp[index] * np.exp(np.float32(-0.5) * d * d)
    out[r >= r_max] = 0
    return out


def ring_light(p: GalaxyParams, r):
    """A ring's light (nmgy / arcsec^2) at disk radius r: a Gaussian in radius on the disk's light there."""
    ring = p.ring
    if ring is None:
        return np.zeros_like(r)
    peak = ring.contrast * p.disk_i0 * np.exp(-ring.radius / p.disk_scale)
    d = (r - np.float32(ring.radius)) / np.float32(ring.width)
    return np.float32(peak) * np.exp(np.float32(-0.5) * d * d)


def dust_depth(p: GalaxyParams, xg, yg):
    """r-band optical depth of the dust lanes at disk-plane positions (0 without dust)."""
    tau = np.zeros_like(xg)
    if p.dust is None:
        return tau
    for offset, angle, half_length, width in p.dust.lanes:
        c, s = np.float32(np.cos(np.radians(angle))), np.float32(np.sin(np.radians(angle)))
        along = xg * c + yg * s
        across = yg * c - xg * s - np.float32(offset)
        fade = 1 - _smoothstep((np.abs(along) - 0.7 * half_length) / (0.3 * half_length))
        tau = tau + np.float32(p.dust.tau_r) * np.exp(np.float32(-0.5) * (across / np.float32(width)) ** 2) * fade
    return tau.astype(np.float32)


@dataclass
class Components:
    disk: np.ndarray
    bulge: np.ndarray
    bar: np.ndarray
    arms: np.ndarray
    ring: np.ndarray | None = None  # only for galaxies with a ring

    @property
    def total(self) -> np.ndarray:
        total = self.disk + self.bulge + self.bar + self.arms
        return total if self.ring is None else total + self.ring


def components(p: GalaxyParams, grid: Grid) -> Components:
    """Noiseless r-band surface brightness of each component at the pixel centres (nmgy / arcsec^2)."""
    east, north = grid.sky()
    a, b, xg, yg = sky_to_disk(p, east, north)
    r = np.sqrt(xg * xg + yg * yg)
    disk = np.float32(p.disk_i0) * np.exp(r * np.float32(-1 / p.disk_scale))
    bulge = bulge_light(p, a, b)
    bar = bar_light(p, xg, yg) if p.bar is not None else np.zeros_like(r)
    arms = arms_light(p, xg, yg, r)
    ring = ring_light(p, r) if p.ring is not None else None
    return Components(disk=disk, bulge=bulge, bar=bar, arms=arms, ring=ring)


def truth_masks(comp: Components) -> tuple[np.ndarray, np.ndarray]:
    """(spiral, bar) uint8 0/1 by the rule in the module docstring."""
    bright = comp.total >= SB_LIMIT
    rest = comp.disk + comp.bulge + comp.bar
    if comp.ring is not None:  # a ring is neither spiral nor bar: it is part of the light arms must dominate
        rest = rest + comp.ring
    bar = bright & (comp.bar > 0) & (comp.bar >= comp.disk + comp.arms)
    spiral = bright & (comp.arms > 0) & (comp.arms >= ARM_SHARE * rest) & ~bar
    return spiral.astype(np.uint8), bar.astype(np.uint8)


def _deposit(planes: np.ndarray, x, y, fluxes: np.ndarray) -> None:
    """Add point sources (fluxes (n, 3) nmgy) at pixel positions with bilinear weights."""
    h, w = planes.shape[1:]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        for band in range(3):
            np.add.at(planes[band], (yi[ok], xi[ok]), (fluxes[ok, band] * wgt[ok]).astype(np.float32))


def knot_positions(p: GalaxyParams) -> tuple[np.ndarray, np.ndarray]:
    """Sky (east, north) [arcsec] of the star-forming knots."""
    knots = p.arms.knots
    if len(knots) == 0:
        return np.zeros(0), np.zeros(0)
    arm, radius, offset = knots[:, 0].astype(int), knots[:, 1], knots[:, 2]
    theta = np.array([arm_azimuth(p, a, r) for a, r in zip(arm, radius)])
    pitch = pitch_at(p, radius) if p.arms.pitch_slope else p.arms.pitch
    theta = theta + offset * arm_width(p, radius) / (radius * np.sin(np.radians(pitch)))
    return disk_to_sky(p, radius * np.cos(theta), radius * np.sin(theta))


def _neighbour_light(p: GalaxyParams, grid: Grid, east, north) -> np.ndarray:
    nb = p.neighbour
    s, c = np.float32(np.sin(np.radians(nb.pa))), np.float32(np.cos(np.radians(nb.pa)))
    de, dn = east - np.float32(nb.east), north - np.float32(nb.north)
    a, b = de * s + dn * c, (de * c - dn * s) / np.float32(nb.axis_ratio)
    bn = 2 * nb.n - 1 / 3
    rr = np.sqrt(a * a + b * b) / np.float32(nb.re)
    return np.float32(nb.mu_e) * np.exp(np.float32(-bn) * (rr ** np.float32(1 / nb.n) - 1))


@dataclass
class Rendering:
    bands: np.ndarray  # (3, H, W) float32, g r z in nmgy per pixel
    spiral: np.ndarray  # (H, W) uint8 truth
    bar: np.ndarray  # (H, W) uint8 truth
    psf_fwhm: float  # arcsec


def render(p: GalaxyParams, grid: Grid, conditions: Conditions, rng: np.random.Generator) -> Rendering:
    """The galaxy on ``grid`` as seen under ``conditions``, with noise from ``rng``, and its truth masks."""
    comp = components(p, grid)
    spiral, bar = truth_masks(comp)
    area = np.float32(grid.pixel_scale**2)
    planes = np.empty((3,) + tuple(grid.shape), np.float32)
    factors = {name: band_factors(COLOURS[name]) * area for name in ("disk", "bulge", "bar", "arms")}
    for band in range(3):
        planes[band] = (comp.disk * factors["disk"][band] + comp.bulge * factors["bulge"][band]
                        + comp.bar * factors["bar"][band] + comp.arms * factors["arms"][band])
    if p.neighbour is not None:
        east, north = grid.sky()
        light = _neighbour_light(p, grid, east, north) * area
        nf = band_factors((p.neighbour.g_r, p.neighbour.r_z))
        for band in range(3):
            planes[band] += light * nf[band]
    east, north = knot_positions(p)
    if len(east):
        x, y = grid.to_pixels(east, north)
        _deposit(planes, x, y, p.arms.knots[:, 3:4] * band_factors(COLOURS["knots"])[None, :])
    if p.stars:
        x, y = grid.to_pixels([s.east for s in p.stars], [s.north for s in p.stars])
        fluxes = np.array([s.flux_r * band_factors((s.g_r, s.r_z)) for s in p.stars])
        _deposit(planes, x, y, fluxes)
    planes = _blur(planes, conditions.psf_fwhm / 2.3548 / grid.pixel_scale, conditions.wing)
    _add_noise(planes, grid.pixel_scale, conditions, rng)
    return Rendering(bands=planes, spiral=spiral, bar=bar, psf_fwhm=conditions.psf_fwhm)


def _blur(planes: np.ndarray, sigma_px: float, wing: float) -> np.ndarray:
    """Convolve each plane with the PSF (Gaussian core of ``sigma_px`` + a wing of 3x that width) by FFT.
    The FFT wraps around; the wing of a bright star at one edge shows at the other at < 1e-3 of its peak."""
    h, w = planes.shape[1:]
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    k2 = np.float32((2 * np.pi) ** 2) * (fx * fx + fy * fy)
    transfer = ((1 - wing) * np.exp(np.float32(-0.5 * sigma_px**2) * k2)
                + wing * np.exp(np.float32(-0.5 * (3 * sigma_px) ** 2) * k2)).astype(np.float32)
    spectrum = sp_fft.rfft2(planes, axes=(-2, -1))
    spectrum *= transfer
    return sp_fft.irfft2(spectrum, s=(h, w), axes=(-2, -1)).astype(np.float32)


def _add_noise(planes: np.ndarray, pixel_scale: float, conditions: Conditions, rng) -> None:
    """Sky and Poisson noise. Sky counts per pixel are in the hundreds and more, so the Poisson noise is
    drawn in its Gaussian limit: variance = sigma_sky^2 + flux / gain [nmgy^2]."""
    for band in range(3):
        sigma = np.float32(conditions.sky_sigma[band] * pixel_scale)
        var = sigma * sigma + np.maximum(planes[band], 0) * np.float32(1 / conditions.gain)
        planes[band] += np.sqrt(var) * rng.standard_normal(var.shape, dtype=np.float32)
