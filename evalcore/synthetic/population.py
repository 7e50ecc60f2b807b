"""The synthetic galaxy population: every parameter of one galaxy, drawn from a seeded generator (no Django).

Angles: position angles are degrees east of north on the sky; angles inside the disk plane are degrees
from the disk's major axis, counter-clockwise as seen on the image (north up, east left). Sizes are arcsec
on the sky (kpc follows from the redshift, see ``kpc_per_arcsec``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

GZ3D_FIELD_ARCSEC = 525 * 0.099  # the release's 525 px at 0.099"/px
INTRINSIC_THICKNESS = 0.15  # disk axis ratio seen edge-on
IFU_DIAMETERS = {19: 12.5, 37: 17.5, 61: 22.5, 91: 27.5, 127: 32.5}  # MaNGA bundle -> diameter [arcsec]
FIBONACCI_SLOTS = 10_000_019  # sky positions on a golden-spiral lattice: ~4' apart, none shared


@functools.lru_cache(maxsize=1)
def _cosmology():
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=67.8, Om0=0.308)


def kpc_per_arcsec(redshift: float) -> float:
    """Proper transverse kpc per arcsec at ``redshift`` (flat LCDM, H0 = 67.8, Om0 = 0.308)."""
    d_a = _cosmology().angular_diameter_distance(redshift).to_value("kpc")
    return float(d_a * np.pi / (180 * 3600))


@functools.lru_cache(maxsize=1)
def _scale_table():
    z = np.linspace(0.005, 0.5, 400)
    d_a = _cosmology().angular_diameter_distance(z).to_value("kpc")
    return z, d_a * np.pi / (180 * 3600)


def redshift_for_scale(scale_kpc_per_arcsec: float) -> float:
    """The redshift at which one arcsec spans ``scale_kpc_per_arcsec`` kpc (clipped to 0.005-0.5)."""
    z, s = _scale_table()
    return float(np.interp(scale_kpc_per_arcsec, s, z))


@dataclass
class Bar:
    half_length: float  # arcsec, in the disk plane, to the bar's edge (its profile's half-light point)
    axis_ratio: float  # minor/major, in the disk plane
    angle: float  # deg in the disk plane from the major axis
    end_contrast: float  # bar surface brightness at its end / disk there
    boxiness: float  # generalised-ellipse exponent (2 = ellipse, larger = boxier)


@dataclass
class Arms:
    m: int  # number of arms (0 = smooth disk)
    pitch: float  # deg
    winding: int  # +1: going outward, arms turn counter-clockwise on the image; -1 clockwise
    width: float  # arcsec, Gaussian sigma across the arm at one disk scale length
    amplitudes: list  # per arm: arm light / disk light on the ridge
    start: float  # arcsec, radius where arms start (the bar end when barred)
    ends: list  # per arm, arcsec, radius where the arm fades out
    phases: list  # per arm, deg: azimuth of the arm's start in the disk plane
    flocculence: float  # 0 = smooth grand design, 1 = patchy
    wiggles: list  # per arm, (amplitude rad, frequency per ln r, phase) x 3: irregular winding
    patches: list  # per arm, (amplitude, frequency per ln r, phase) x 4: brightness along the arm
    knots: np.ndarray  # (n, 4): arm index, radius arcsec, azimuth offset in arm widths, r-band flux nmgy
    pitch_slope: float = 0.0  # deg per unit ln(r / start): pitch changes with radius (0 = logarithmic spiral)
    family: str = "logarithmic"  # "logarithmic", "varying pitch", "flocculent" (styles with structural variety)


@dataclass
class Star:
    east: float  # arcsec from the galaxy centre
    north: float
    flux_r: float  # nmgy
    g_r: float  # colour, mag
    r_z: float


@dataclass
class Neighbour:
    east: float  # arcsec
    north: float
    re: float  # arcsec, effective radius
    n: float  # Sersic index
    axis_ratio: float
    pa: float  # deg
    mu_e: float  # r-band surface brightness at re, nmgy / arcsec^2
    g_r: float
    r_z: float


@dataclass
class Ring:
    radius: float  # arcsec, in the disk plane
    width: float  # arcsec, Gaussian sigma
    contrast: float  # ring light / disk light at its radius


@dataclass
class Dust:
    lanes: list  # per lane: (offset across, angle in the disk plane [deg], half-length, width), lengths in arcsec
    tau_r: float  # r-band optical depth on the lane's ridge


@dataclass
class GalaxyParams:
    index: int
    ra: float  # deg
    dec: float  # deg
    redshift: float
    kpc_per_arcsec: float
    pa: float  # disk major axis, deg east of north
    axis_ratio: float  # observed disk b/a
    inclination: float  # deg
    disk_scale: float  # arcsec
    disk_i0: float  # r-band central surface brightness, nmgy / arcsec^2
    bulge_re: float  # arcsec
    bulge_n: float
    bulge_ie: float  # nmgy / arcsec^2 at bulge_re
    bulge_axis_ratio: float
    bar: Bar | None
    arms: Arms
    morphology: str  # "barred spiral", "spiral", "weak-armed disk", "smooth disk"
    ifu_design: int
    stars: list = field(default_factory=list)
    neighbour: Neighbour | None = None
    ring: Ring | None = None  # a ring: neither spiral nor bar (styles with structural variety only)
    dust: Dust | None = None  # dust lanes: absorb light in the image, the truth is the structure before them
    colours: dict | None = None  # component -> (g - r, r - z); None = the classic renderer's colours
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived tables, not parameters

    @property
    def cos_inclination(self) -> float:
        return float(np.cos(np.radians(self.inclination)))


def sky_position(seed: int, index: int) -> tuple[float, float]:
    """(ra, dec) in deg: a point of a golden-spiral lattice, distinct for every (seed, index) pair used."""
    slot = (index * 7_368_787 + seed * 2_654_435 + 12_345) % FIBONACCI_SLOTS
    z = 1 - (2 * slot + 1) / FIBONACCI_SLOTS
    dec = float(np.degrees(np.arcsin(z)))
    ra = float((slot * 137.50776405003785) % 360.0)
    return ra, dec


def _choose_ifu(disk_scale: float) -> int:
    # MaNGA's primary sample covers 1.5 effective radii (r_e = 1.68 disk scale lengths)
    for design, diameter in IFU_DIAMETERS.items():
        if diameter >= 3 * 1.68 * disk_scale * 0.8:
            return design
    return 127


def draw_galaxy(rng: np.random.Generator, *, seed: int, index: int, field_arcsec: float) -> GalaxyParams:
    """Draw one galaxy that fits in a square field of ``field_arcsec`` (the smaller of the two grids)."""
    ra, dec = sky_position(seed, index)
    kind = rng.choice(4, p=[0.33, 0.44, 0.11, 0.12])
    morphology = ("barred spiral", "spiral", "weak-armed disk", "smooth disk")[kind]
    barred = kind == 0
    disk_scale = float(field_arcsec * rng.uniform(0.045, 0.095))
    disk_kpc = float(np.exp(rng.normal(np.log(3.2), 0.3)))
    redshift = redshift_for_scale(disk_kpc / disk_scale)
    scale = kpc_per_arcsec(redshift)
    axis_ratio = float(rng.uniform(0.42, 1.0))
    cos_i = np.sqrt(max(axis_ratio**2 - INTRINSIC_THICKNESS**2, 1e-4) / (1 - INTRINSIC_THICKNESS**2))
    inclination = float(np.degrees(np.arccos(min(cos_i, 1.0))))
    disk_mu0 = rng.uniform(20.2, 21.6)
    disk_i0 = float(10 ** ((22.5 - disk_mu0) / 2.5))
    bulge_re = float(disk_scale * rng.uniform(0.12, 0.3))
    bulge_n = float(rng.uniform(1.2, 4.0))
    bulge_to_disk = rng.uniform(1.0, 6.0) * (1.8 if kind == 3 else 1.0)
    bulge_ie = float(disk_i0 * np.exp(-bulge_re / disk_scale) * bulge_to_disk)
    bulge_axis_ratio = float(max(axis_ratio, rng.uniform(0.7, 0.95)))

    bar = None
    if barred:
        bar = Bar(half_length=float(disk_scale * rng.uniform(0.7, 1.5)), axis_ratio=float(rng.uniform(0.22, 0.4)),
                  angle=float(rng.uniform(0, 180)), end_contrast=float(rng.uniform(1.4, 2.6)),
                  boxiness=float(rng.uniform(2.2, 3.2)))
    arms = _draw_arms(rng, kind, disk_scale, bar, disk_i0)
    stars = _draw_stars(rng, field_arcsec, disk_scale)
    neighbour = _draw_neighbour(rng, field_arcsec, disk_i0) if rng.random() < 0.15 else None
    return GalaxyParams(
        index=index, ra=ra, dec=dec, redshift=redshift, kpc_per_arcsec=scale, pa=float(rng.uniform(0, 180)),
        axis_ratio=axis_ratio, inclination=inclination, disk_scale=disk_scale, disk_i0=disk_i0,
        bulge_re=bulge_re, bulge_n=bulge_n, bulge_ie=bulge_ie, bulge_axis_ratio=bulge_axis_ratio,
        bar=bar, arms=arms, morphology=morphology, ifu_design=_choose_ifu(disk_scale), stars=stars,
        neighbour=neighbour,
    )


def _draw_arms(rng, kind, disk_scale, bar, disk_i0) -> Arms:
    if kind == 3:
        m = 0
    elif bar is not None:
        m = 2 if rng.random() < 0.85 else int(rng.choice([3, 4]))
    else:
        m = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.6, 0.22, 0.13]))
    strong = kind in (0, 1)
    base = rng.uniform(1.6, 3.5) if strong else rng.uniform(0.55, 1.0)
    amplitudes = [float(base * rng.uniform(0.75, 1.15)) for _ in range(m)]
    if m >= 3 and rng.random() < 0.4:  # a faint arm, the kind volunteers miss
        amplitudes[int(rng.integers(m))] *= float(rng.uniform(0.35, 0.6))
    start = bar.half_length * 0.95 if bar is not None else disk_scale * rng.uniform(0.45, 0.8)
    ends = [float(disk_scale * rng.uniform(2.6, 3.8)) for _ in range(m)]
    if bar is not None:
        phase0 = bar.angle
    else:
        phase0 = rng.uniform(0, 360)
    phases = [float((phase0 + k * 360 / max(m, 1) + (rng.normal(0, 12) if bar is None else 0)) % 360)
              for k in range(m)]
    flocculence = float(rng.beta(1.5, 3.0))
    wiggles = [[(float(rng.normal(0, 0.06 + 0.12 * flocculence)), float(rng.uniform(1.5, 6)),
                 float(rng.uniform(0, 2 * np.pi))) for _ in range(3)] for _ in range(m)]
    patches = [[(float(rng.uniform(0.1, 0.25 + 0.5 * flocculence)), float(rng.uniform(3, 14)),
                 float(rng.uniform(0, 2 * np.pi))) for _ in range(4)] for _ in range(m)]
    n_knots = int(rng.poisson(8 + 30 * flocculence)) * m // 2 if m else 0
    if n_knots:
        arm = rng.integers(0, m, n_knots)
        radius = np.array([rng.uniform(start, ends[a]) for a in arm])
        offset = rng.normal(0, 0.5, n_knots)
        flux = disk_i0 * disk_scale**2 * 0.012 * rng.lognormal(0, 0.6, n_knots) * np.exp(-radius / disk_scale / 2)
        knots = np.column_stack([arm, radius, offset, flux]).astype(np.float64)
    else:
        knots = np.zeros((0, 4))
    return Arms(m=m, pitch=float(rng.uniform(8, 40)), winding=int(rng.choice([-1, 1])),
                width=float(disk_scale * rng.uniform(0.14, 0.24)), amplitudes=amplitudes, start=float(start),
                ends=ends, phases=phases, flocculence=flocculence, wiggles=wiggles, patches=patches, knots=knots)


def _draw_stars(rng, field_arcsec, disk_scale) -> list[Star]:
    stars = []
    for _ in range(int(rng.poisson(1.6))):
        east, north = rng.uniform(-0.75, 0.75, 2) * field_arcsec
        if np.hypot(east, north) < 1.5 * disk_scale:
            continue
        mag = 21.5 - 7.0 * rng.random() ** 2
        g_r = float(rng.uniform(0.3, 1.5))  # main-sequence-like: redder in g-r is redder in r-z
        stars.append(Star(east=float(east), north=float(north), flux_r=float(10 ** ((22.5 - mag) / 2.5)),
                          g_r=g_r, r_z=float(0.9 * g_r - 0.15 + rng.normal(0, 0.08))))
    return stars


def _draw_neighbour(rng, field_arcsec, disk_i0) -> Neighbour:
    angle = rng.uniform(0, 2 * np.pi)
    distance = field_arcsec * rng.uniform(0.3, 0.48)
    red = rng.random() < 0.5
    return Neighbour(east=float(distance * np.sin(angle)), north=float(distance * np.cos(angle)),
                     re=float(field_arcsec * rng.uniform(0.02, 0.05)), n=float(rng.uniform(1, 4)),
                     axis_ratio=float(rng.uniform(0.4, 1)), pa=float(rng.uniform(0, 180)),
                     mu_e=float(disk_i0 * rng.uniform(0.05, 0.3)),
                     g_r=float(0.85 if red else 0.5), r_z=float(0.6 if red else 0.35))


# --- structural variety (the GalSim styles) -----------------------------------------------------------
PITCH_RANGE = (6.0, 45.0)  # deg: where a pitch that changes with radius stays


def vary_structure(p: GalaxyParams, rng: np.random.Generator) -> GalaxyParams:
    """Randomise what is not the structure being taught, on a galaxy drawn by ``draw_galaxy`` (in place):
    component colours (arms sometimes the disk's colour, sometimes bluer or redder), bulge size, arm
    families (pitch that changes with radius, flocculent arms), rings, dust lanes. Uses only ``rng``, so
    the galaxy stays a function of (seed, index)."""
    # bulge size and brightness over a wider range than the classic population
    scale = float(rng.uniform(0.6, 1.8))
    p.bulge_re = float(np.clip(p.bulge_re * scale, 0.06 * p.disk_scale, 0.5 * p.disk_scale))
    p.bulge_ie = float(p.bulge_ie * rng.uniform(0.5, 1.6) / scale)
    # colours: the disk from a red-to-blue range, bulge and bar redder, the arms' colour relative to the disk
    disk = (float(rng.uniform(0.4, 0.85)), float(rng.uniform(0.25, 0.55)))
    red = float(rng.uniform(0.05, 0.35))
    arm_kind = rng.choice(3, p=[0.3, 0.5, 0.2])  # the disk's own colour / bluer / redder
    shift = (0.0, float(-rng.uniform(0.1, 0.45)), float(rng.uniform(0.05, 0.2)))[arm_kind]
    knots_shift = float(rng.uniform(-0.7, 0.0)) if rng.random() < 0.7 else shift
    p.colours = {"disk": disk, "bulge": (disk[0] + red, disk[1] + 0.6 * red),
                 "bar": (disk[0] + 0.6 * red, disk[1] + 0.4 * red),
                 "arms": (disk[0] + shift, disk[1] + 0.6 * shift),
                 "ring": (disk[0] + shift * rng.uniform(0, 1), disk[1] + 0.4 * shift),
                 "knots": (disk[0] + knots_shift, disk[1] + 0.6 * knots_shift)}
    arms = p.arms
    if arms.m:
        family = rng.choice(3, p=[0.45, 0.35, 0.2])
        if family == 1:  # pitch changing with radius, within PITCH_RANGE over the arms' extent
            lr_max = float(np.log(max(arms.ends) / arms.start)) + 0.5
            lo, hi = PITCH_RANGE
            arms.pitch = float(np.clip(arms.pitch, lo + 1, hi - 1))
            slope = float(rng.uniform(-1, 1) * min(12.0, (hi - arms.pitch) / lr_max, (arms.pitch - lo) / lr_max))
            if abs(slope) > 0.5:
                arms.pitch_slope = slope
                arms.family = "varying pitch"
        elif family == 2:  # flocculent: irregular, patchy, knotty arms
            f = float(rng.uniform(2.0, 3.0))
            arms.wiggles = [[(a * f, fr, ph) for a, fr, ph in w] for w in arms.wiggles]
            arms.patches = [[(a * 1.8, fr * 1.5, ph) for a, fr, ph in w] for w in arms.patches]
            arms.flocculence = float(min(1.0, arms.flocculence + 0.5))
            if len(arms.knots):
                arms.knots[:, 3] *= 1.8
            arms.family = "flocculent"
    if rng.random() < 0.25:  # an inner ring at the bar's end or an outer ring beyond the arms
        if p.bar is not None and rng.random() < 0.6:
            radius = p.bar.half_length * float(rng.uniform(0.95, 1.15))
        else:
            radius = p.disk_scale * float(rng.uniform(2.4, 3.4))
        p.ring = Ring(radius=float(radius), width=float(p.disk_scale * rng.uniform(0.08, 0.18)),
                      contrast=float(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.3:  # dust lanes: on a bar's leading edges, or along an inclined disk's near side
        if p.bar is not None:
            w = p.bar.half_length * p.bar.axis_ratio
            lanes = [(s * w * 0.6, p.bar.angle + s * 8, p.bar.half_length * 0.9, w * 0.25) for s in (-1, 1)]
        else:
            lanes = [(p.disk_scale * float(rng.uniform(0.1, 0.5)), 0.0, p.disk_scale * 3.0,
                      p.disk_scale * float(rng.uniform(0.08, 0.2)))]
        p.dust = Dust(lanes=[tuple(float(x) for x in lane) for lane in lanes], tau_r=float(rng.uniform(0.3, 1.2)))
    p.cache.clear()
    return p
