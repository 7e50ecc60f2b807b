"""Simulated Galaxy Zoo: 3D volunteers: polygons around arms and bars, with the errors real crowds make.

The model is versioned and frozen: a change to anything here that alters the polygons drawn for a given
seed must bump ``VOLUNTEER_MODEL_VERSION`` (models trained on one version are compared on that version).
Choices and their reasons are in docs/synthetic.md. Polygons are [x, y] pixel vertices on the GZ3D grid
(x along a row, y down the rows, row 0 = north), as in HDU 9 / 10.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalcore.formats.gz3d import Classification
from evalcore.synthetic import renderer
from evalcore.synthetic.population import GalaxyParams

VOLUNTEER_MODEL_VERSION = "1"
DEFAULT_VOLUNTEERS = 15
MAX_VOLUNTEERS = 60


@dataclass(frozen=True)
class Crowd:
    """Error model of a crowd. Widths and offsets are in arm widths; lengths are factors."""

    name: str
    width_factor: float  # median drawn half-width / true half-width
    width_spread: float  # lognormal sigma of that factor between volunteers
    offset: float  # systematic shift of traced arms, outward (+) in arm widths
    offset_spread: float  # per-volunteer random shift, arm widths
    blank: float  # base probability of drawing nothing on a visible spiral
    miss: float  # base probability of missing a bright arm
    bar_as_arm: float  # probability of tracing a bar as an arm
    bar_length_factor: float  # median drawn bar length / true length
    bar_width_factor: float
    bar_angle_sd: float  # deg


CROWDS = {
    "default": Crowd(name="default", width_factor=1.1, width_spread=0.3, offset=0.0, offset_spread=0.45,
                     blank=0.12, miss=0.06, bar_as_arm=0.12, bar_length_factor=1.0, bar_width_factor=1.3,
                     bar_angle_sd=6.0),
    # errors every volunteer shares: they survive averaging, so consensus masks are systematically wrong
    "biased": Crowd(name="biased", width_factor=1.9, width_spread=0.15, offset=0.9, offset_spread=0.2,
                    blank=0.08, miss=0.05, bar_as_arm=0.12, bar_length_factor=1.45, bar_width_factor=1.8,
                    bar_angle_sd=4.0),
}


def get_crowd(name: str) -> Crowd:
    try:
        return CROWDS[name]
    except KeyError:
        raise ValueError(f"unknown crowd {name!r}; choose one of: {', '.join(CROWDS)}") from None


@dataclass
class Tasks:
    """Which drawing tasks a galaxy was sent to, decided from simulated earlier Galaxy Zoo votes."""

    spiral: bool
    bar: bool
    gz_total: int
    gz_spiral_votes: int
    gz_bar_votes: int


def ask_tasks(p: GalaxyParams, rng: np.random.Generator) -> Tasks:
    """As in GZ3D, only galaxies that earlier volunteers called spiral / barred get those tasks."""
    total = int(rng.integers(35, 65))
    spiral_p = {"barred spiral": 0.85, "spiral": 0.85, "weak-armed disk": 0.5, "smooth disk": 0.2}[p.morphology]
    spiral_votes = int(rng.binomial(total, spiral_p))
    bar_votes = int(rng.binomial(total, 0.5 if p.bar is not None else 0.15))
    bar = bar_votes >= 0.2 * total
    # every subject in a GZ3D file was drawn on: one with neither vote passing still got the spiral task
    spiral = spiral_votes >= 0.2 * total or not bar
    return Tasks(spiral=spiral, bar=bar, gz_total=total,
                 gz_spiral_votes=spiral_votes, gz_bar_votes=bar_votes)


# --- geometry of what volunteers see ------------------------------------------------------------------
def _light_at(p: GalaxyParams, xg: np.ndarray, yg: np.ndarray):
    """(arms, disk + bulge + bar, total) r-band light at disk-plane points (1-D arrays)."""
    xg, yg = np.asarray(xg, np.float32), np.asarray(yg, np.float32)
    east, north = renderer.disk_to_sky(p, xg, yg)
    a, b, _, _ = renderer.sky_to_disk(p, np.asarray(east, np.float32), np.asarray(north, np.float32))
    r = np.sqrt(xg * xg + yg * yg)
    arms = renderer.arms_light(p, xg, yg, r)
    rest = renderer.disk_light(p, r) + renderer.bulge_light(p, a, b)
    if p.bar is not None:
        rest = rest + renderer.bar_light(p, xg, yg)
    if p.ring is not None:
        rest = rest + renderer.ring_light(p, r)
    return arms, rest, arms + rest


def visible_arm_extent(p: GalaxyParams, k: int) -> tuple[float, float] | None:
    """Radii [arcsec] between which arm k's ridge dominates by the truth rule, or None if nowhere."""
    extents = p.cache.setdefault("visible_extents", {})
    if k not in extents:
        extents[k] = _visible_arm_extent(p, k)
    return extents[k]


def _visible_arm_extent(p: GalaxyParams, k: int) -> tuple[float, float] | None:
    radii = np.linspace(p.arms.start, p.arms.ends[k], 160)
    theta = renderer.arm_azimuth(p, k, radii)
    arms, rest, total = _light_at(p, radii * np.cos(theta), radii * np.sin(theta))
    ok = (arms >= renderer.ARM_SHARE * rest) & (total >= renderer.SB_LIMIT)
    if not ok.any():
        return None
    return float(radii[ok].min()), float(radii[ok].max())


def _to_pixels(p: GalaxyParams, grid: renderer.Grid, xg, yg) -> np.ndarray:
    east, north = renderer.disk_to_sky(p, np.asarray(xg), np.asarray(yg))
    x, y = grid.to_pixels(east, north)
    return np.column_stack([x, y])


def _arm_polygon(p, grid, k, r0, r1, width_factor, offset, wobble, rng, jitter_px) -> list:
    n = int(np.clip(6 + (r1 - r0) / p.disk_scale * 5, 8, 24))  # vertices per side, as a quick hand-drawn outline
    radii = np.linspace(r0, r1, n)
    theta = renderer.arm_azimuth(p, k, radii)
    ridge = np.column_stack([radii * np.cos(theta), radii * np.sin(theta)])
    tangent = np.gradient(ridge, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal *= np.sign(np.sum(normal * ridge, axis=1, keepdims=True) + 1e-12)  # point outward
    width = renderer.arm_width(p, radii)
    amp = max(p.arms.amplitudes[k], 0.6)
    half = width * np.sqrt(2 * np.log(2 * amp)) * width_factor
    half = np.maximum(half, 0.35 * p.arms.width)
    # the taper of a hand-drawn loop: narrower at both ends
    half = half * (0.55 + 0.45 * np.sin(np.linspace(0.15, np.pi - 0.15, n)))
    shift = (offset + wobble * np.sin(np.linspace(0, np.pi * rng.uniform(1, 3), n) + rng.uniform(0, 6))) * width
    centre = ridge + normal * shift[:, None]
    left, right = centre + normal * half[:, None], centre - normal * half[:, None]
    outline = np.vstack([left, right[::-1]])
    px = _to_pixels(p, grid, outline[:, 0], outline[:, 1])
    px += rng.normal(0, jitter_px, px.shape)
    return np.round(px, 1).tolist()


def bar_box(p: GalaxyParams, grid: renderer.Grid) -> dict:
    """The bar as seen on ``grid``: centre (x, y) px, half-length and half-width px, angle (rad, image x to
    the long axis, y down) from the projected outline of the bar."""
    bar = p.bar
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c = bar.boxiness
    ex = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / c) * bar.half_length
    ey = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / c) * bar.half_length * bar.axis_ratio
    ang = np.radians(bar.angle)
    xg, yg = ex * np.cos(ang) - ey * np.sin(ang), ex * np.sin(ang) + ey * np.cos(ang)
    outline = _to_pixels(p, grid, xg, yg)
    ends = _to_pixels(p, grid, np.array([np.cos(ang), -np.cos(ang)]) * bar.half_length,
                      np.array([np.sin(ang), -np.sin(ang)]) * bar.half_length)
    centre = ends.mean(axis=0)
    axis = ends[0] - ends[1]
    angle = float(np.arctan2(axis[1], axis[0]))
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    rel = outline - centre
    return {"centre": centre, "half_length": float(np.abs(rel @ u).max()), "half_width": float(np.abs(rel @ v).max()),
            "angle": angle}


def _box_polygon(centre, half_length, half_width, angle, rng, corner_jitter) -> list:
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    corners = np.array([centre + s * half_length * u + t * half_width * v
                        for s, t in ((1, 1), (-1, 1), (-1, -1), (1, -1))])
    corners += rng.normal(0, corner_jitter, corners.shape)
    return np.round(corners, 1).tolist()


# --- the crowd ----------------------------------------------------------------------------------------
def _time_stamp(rng) -> str:
    return (f"2017-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
            f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d} UTC")


def draw_crowd(p: GalaxyParams, grid: renderer.Grid, tasks: Tasks, rng: np.random.Generator, *,
               crowd: Crowd, n_volunteers: int = DEFAULT_VOLUNTEERS, id_base: int = 0
               ) -> tuple[list[Classification], list[Classification]]:
    """The classifications (spiral, bar) of ``n_volunteers`` simulated volunteers on ``grid``.
    A task the galaxy was not sent to gives [] (not asked); a volunteer who drew nothing has polygons []."""
    if not 1 <= n_volunteers <= MAX_VOLUNTEERS:
        raise ValueError(f"volunteers per galaxy must be 1..{MAX_VOLUNTEERS}, got {n_volunteers}")
    h_px = p.disk_scale / grid.pixel_scale
    extents = [visible_arm_extent(p, k) for k in range(p.arms.m)]
    box = bar_box(p, grid) if p.bar is not None else None
    spiral, bar = [], []
    for j in range(n_volunteers):
        skill = float(rng.beta(5, 2))
        cid, stamp = id_base + j + 1, _time_stamp(rng)
        if tasks.spiral:
            spiral.append(Classification(cid, stamp, _spiral_drawing(p, grid, extents, box, skill, crowd, rng, h_px)))
        if tasks.bar:
            bar.append(Classification(cid, stamp, _bar_drawing(p, grid, box, skill, crowd, rng)))
    return spiral, bar


def _spiral_drawing(p, grid, extents, box, skill, crowd, rng, h_px) -> list:
    visible = [k for k, e in enumerate(extents) if e is not None]
    strength = np.mean([p.arms.amplitudes[k] for k in visible]) if visible else 0.0
    clarity = float(np.clip((strength - 0.4) / 1.6, 0, 1))
    if rng.random() < crowd.blank + 0.35 * (1 - clarity) + 0.1 * (1 - skill):
        return []
    polygons = []
    jitter = 0.004 * h_px * 10 * (1.4 - skill)
    if not visible:  # a smooth disk: a few volunteers still trace an arc they think they see
        if rng.random() < 0.35:
            k_r = p.disk_scale * rng.uniform(1.0, 2.2)
            span = rng.uniform(1.2, 2.8)
            t = np.linspace(0, span, 16) + rng.uniform(0, 2 * np.pi)
            inner, outer = k_r * 0.85, k_r * 1.15
            xg = np.concatenate([outer * np.cos(t), inner * np.cos(t[::-1])])
            yg = np.concatenate([outer * np.sin(t), inner * np.sin(t[::-1])])
            polygons.append(np.round(_to_pixels(p, grid, xg, yg), 1).tolist())
        return polygons
    lazy = rng.random() < 0.2  # traces only the most obvious arms
    order = sorted(visible, key=lambda k: -p.arms.amplitudes[k])
    chosen = order[:int(rng.integers(1, len(order) + 1))] if lazy else order
    width_factor = crowd.width_factor * float(np.exp(rng.normal(0, crowd.width_spread)))
    for k in chosen:
        arm_clarity = float(np.clip((p.arms.amplitudes[k] - 0.4) / 1.6, 0, 1))
        if rng.random() < crowd.miss + 0.55 * (1 - arm_clarity) * (1.2 - skill):
            continue
        r_first, r_last = extents[k]
        r0 = r_first + abs(rng.normal(0, 0.15)) * p.disk_scale
        r1 = r_first + (r_last - r_first) * float(np.clip(rng.normal(0.85, 0.18) + 0.1 * skill, 0.3, 1.15))
        if r1 - r0 < 0.3 * p.disk_scale:
            continue
        offset = crowd.offset + rng.normal(0, crowd.offset_spread * (1.3 - skill))
        wf = width_factor * float(np.exp(rng.normal(0, 0.1)))
        polygons.append(_arm_polygon(p, grid, k, r0, r1, wf, offset, 0.25 * (1.3 - skill), rng, jitter))
    if box is not None and rng.random() < crowd.bar_as_arm * (1.3 - skill):
        polygons.append(_box_polygon(box["centre"], box["half_length"] * 0.9, box["half_width"] * 1.2,
                                     box["angle"], rng, 0.05 * box["half_length"]))
    return polygons


def _bar_drawing(p, grid, box, skill, crowd, rng) -> list:
    if box is None:  # asked, but there is no bar: a few volunteers box the bulge
        if rng.random() < 0.12:
            half = 2.2 * p.bulge_re / grid.pixel_scale * rng.uniform(0.8, 1.5)
            east, north = np.sin(np.radians(p.pa)), np.cos(np.radians(p.pa))
            x, y = grid.to_pixels(east, north)
            angle = float(np.arctan2(y - grid.y0, x - grid.x0)) + np.radians(rng.normal(0, 15))
            return [_box_polygon(np.array([grid.x0, grid.y0]), half, half * rng.uniform(0.3, 0.6), angle, rng,
                                 0.05 * half)]
        return []
    if rng.random() > np.clip(0.45 + 0.45 * skill + 0.1 * (p.bar.end_contrast - 2), 0.05, 0.97):
        return []
    half_length = box["half_length"] * crowd.bar_length_factor * float(np.exp(rng.normal(0, 0.18)))
    half_width = box["half_width"] * crowd.bar_width_factor * float(np.exp(rng.normal(0, 0.25)))
    angle = box["angle"] + np.radians(rng.normal(0, crowd.bar_angle_sd * (1.3 - skill)))
    centre = box["centre"] + rng.normal(0, 0.06 * box["half_length"], 2)
    return [_box_polygon(centre, half_length, half_width, angle, rng, 0.05 * box["half_length"])]
