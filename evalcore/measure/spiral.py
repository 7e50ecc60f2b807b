"""Spiral arms from a fraction map: number of arms, pitch angle per arm and overall, chirality (no Django).

Method (docs/measurements.md): deproject every pixel to the disk plane; keep pixels at or above a fraction
of the map's maximum, away from the centre; each 8-connected region is an arm piece, and pieces lying on
one log spiral are joined into one arm (``join_pieces``). In the log-polar
plane (theta, ln r) a logarithmic spiral r = r0 exp(-b (theta - theta0)) is a straight line whose angle
to the theta axis is the pitch angle (tan(pitch) = b), and the map is conformal, so an arm of any width
is a straight band there. Each arm's angles are unwrapped along the region itself (breadth-first from one
pixel, adding the wrapped step to each neighbour). The band's direction comes from its two long sides
(``_sides_fit``): the region's outline pixels are split by the side of the centre line they lie on, the
pixels of the ends (which cross from one side to the other) are dropped, theta is fitted on ln r to each
side, and the pitch is the mean of the two sides'. A side is a thin line, so this depends neither on
the arm's width nor on how its ends are shaped. A least-squares fit of theta on ln r over all pixels is
exact only for arms cut at radii (every radius then holds a whole cross-section); the loops volunteers
draw end across the arm and narrow towards their ends, and that fit reads them 3-5 deg too open (on the
simulated crowd of the benchmark survey: +5.2 deg median, against +2.1 deg from the sides). An
orthogonal fit of all pixels is exact for such loops but pulls arms cut at radii towards smaller pitch
(35 deg drawn, 30.5 deg found for arms a sixth of a turn wide; the sides give 35.2 deg).

Sign convention: theta increases anticlockwise as the image is displayed (north up, east left), so b > 0
(positive pitch) means the arm winds clockwise going outwards: an S-wise spiral. Negative pitch is
Z-wise. This matches the signs of SpArcFiRe's ``pitch_angle`` column against its chirality verdicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from . import MEASUREMENT_CODE_VERSION
from .bar import EIGHT_NEIGHBOURS, check_fraction_map
from .geometry import check_disk, disk_coordinates
from .results import known_fields, plain

S_WISE, Z_WISE = "S", "Z"
# The loops that run per pixel or per bootstrap resample are compiled with numba (``*_nb``, cached on disk
# after the first call). False runs the same steps in plain numpy/Python (``_sides_fit_py``, the loops
# written out), which is the readable definition; the tests check both give the same results.
_COMPILED = True
NEIGHBOUR_STEPS = ((0, 1), (1, -1), (1, 0), (1, 1))  # each undirected 8-neighbour pair once


@dataclass
class ArmFit:
    """One arm's log-spiral fit; radii in deprojected px, angles in deg."""

    n_pixels: int
    weight: float  # sum of fractions over the arm's pixels
    pitch: float  # signed: > 0 S-wise, < 0 Z-wise, deg
    pitch_err: float  # block-bootstrap standard deviation, deg
    chirality: str
    r_start: float  # px, disk plane
    r_end: float
    theta_span: float  # deg of winding covered by the arm
    arc_length: float  # px, disk plane, along the fitted spiral
    width_rms: float  # rms distance across the fitted line in the log-polar plane (~ width / r)
    n_pieces: int = 1  # separate regions of the mask joined into this arm


@dataclass
class SpiralMeasurement:
    """Arms of one mask. ``pitch`` is the arc-length-weighted mean over the arms of the dominant chirality,
    signed like the arms'; ``chirality_agreement`` the share of arc length winding that way."""

    measured: bool
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    code_version: str = MEASUREMENT_CODE_VERSION
    n_arms: int = 0
    pitch: float | None = None  # deg, signed
    pitch_abs: float | None = None  # deg
    pitch_err: float | None = None  # deg
    chirality: str | None = None
    chirality_agreement: float | None = None
    arms: list[ArmFit] = field(default_factory=list)
    rejected_regions: list[dict] = field(default_factory=list)  # {"n_pixels", "reason"}
    centre_row: float | None = None  # px
    centre_col: float | None = None  # px
    disk_axis_ratio: float = 1.0
    disk_position_angle: float = 0.0  # deg east of north
    threshold: float | None = None  # fraction value used to cut the arms
    inner_radius: float | None = None  # px, disk plane

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> SpiralMeasurement:
        data = known_fields(cls, data)
        data["arms"] = [ArmFit(**known_fields(ArmFit, a)) for a in data.get("arms", [])]
        return cls(**data)


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _neighbour_pairs(rows, cols, shape):
    """Index pairs (i, j) of 8-adjacent pixels among the given pixels."""
    index = -np.ones(shape, np.int64)
    index[rows, cols] = np.arange(len(rows))
    pairs = []
    for dr, dc in NEIGHBOUR_STEPS:
        r2, c2 = rows + dr, cols + dc
        ok = (r2 >= 0) & (r2 < shape[0]) & (c2 >= 0) & (c2 < shape[1])
        j = np.full(len(rows), -1)
        j[ok] = index[r2[ok], c2[ok]]
        keep = j >= 0
        pairs.append(np.stack([np.flatnonzero(keep), j[keep]], axis=1))
    return np.concatenate(pairs)


@njit(cache=True)
def _accumulate_steps(theta, order, parent):
    """Unwrapped angles along a breadth-first order: each pixel gets its parent's angle plus the wrapped step
    (a loop over pixels, compiled)."""
    out = np.empty(len(theta))
    out[order[0]] = theta[order[0]]
    for i in range(1, len(order)):
        node = order[i]
        p = parent[node]
        out[node] = out[p] + ((theta[node] - theta[p] + np.pi) % (2 * np.pi) - np.pi)
    return out


def unwrap_region(theta, rows, cols, shape):
    """Continuous angles (rad) over one connected region, or None if the region goes round the centre.

    Breadth-first from the first pixel, each pixel gets its parent's angle plus the wrapped step. If two
    neighbours then disagree by about a turn, the region closes a loop around the centre (a ring, or arms
    joined round the bulge) and has no single unwrapping.
    """
    pairs = _neighbour_pairs(rows, cols, shape)
    n = len(theta)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    order, parent = breadth_first_order(graph, 0, directed=False, return_predecessors=True)
    if len(order) != n:
        raise ValueError("unwrap_region needs one connected region")
    if _COMPILED:
        out = _accumulate_steps(np.asarray(theta, np.float64), order, parent)
    else:
        out = np.empty(n)
        out[order[0]] = theta[order[0]]
        for node in order[1:]:
            p = parent[node]
            out[node] = out[p] + _wrap(theta[node] - theta[p])
    a, b = pairs[:, 0], pairs[:, 1]
    if np.any(np.abs((out[a] - out[b]) - _wrap(theta[a] - theta[b])) > np.pi):
        return None
    return out


def _elongation(x, y, w) -> float:
    """Long over short axis of the weighted point cloud (inf for a line)."""
    cov = np.cov(np.stack([x, y]), aweights=w, bias=True)
    small, large = np.linalg.eigvalsh(cov)
    return float(np.sqrt(large / small)) if small > 0 else float("inf")


def _pitch_deg(theta, ln_r, w):
    """Signed pitch (deg) of the weighted least-squares line theta = a + beta ln r.

    ln r = c - b theta gives beta = -1 / b and pitch = atan(b) = atan2(-1, beta) folded into [-90, 90].
    """
    mt, ml = np.average(theta, weights=w), np.average(ln_r, weights=w)
    beta = np.sum(w * (theta - mt) * (ln_r - ml)) / np.sum(w * (ln_r - ml) ** 2)
    pitch = np.degrees(np.arctan2(-1.0, beta))
    return float((pitch + 90.0) % 180.0 - 90.0)


def _direction(pitch_deg):
    """Unit vector (d_theta, d_ln_r) along a log spiral of this pitch in the log-polar plane."""
    b = np.tan(np.radians(pitch_deg))
    return np.array([1.0, -b]) / np.hypot(1.0, b)


def _side_pixels(points, scale, n_iter: int = 4):
    """Which of one side's outline pixels lie on the side itself, or None if fewer than 5 do.

    ``points`` (n, 2) in the log-polar plane; ``scale`` per point, the size of a pixel there (1 / r).
    The arm's end outlines cross from one side to the other, so their pixels lie off the side's line:
    points further from an orthogonal line fit than max(3 robust sigma, 1.5 px) are dropped and the line
    refitted.
    """
    keep = np.ones(len(points), bool)
    for _ in range(n_iter):
        if keep.sum() < 5:
            return None
        x, y = (points[keep] - points[keep].mean(axis=0)).T
        angle = 0.5 * np.arctan2(2 * np.dot(x, y), np.dot(x, x) - np.dot(y, y))  # of the principal axis
        resid = np.abs((points - points[keep].mean(axis=0)) @ np.array([-np.sin(angle), np.cos(angle)]))
        sigma = 1.4826 * np.median(resid[keep])
        new = resid <= np.maximum(3 * sigma, 1.5 * scale)
        if np.array_equal(new, keep):
            break
        keep = new
    return keep if keep.sum() >= 5 else None


def _mean_pitch(a: float, b: float) -> float:
    """Mean of two pitch angles (deg) the short way round the 180 deg wrap."""
    b = a + (b - a + 90.0) % 180.0 - 90.0
    return float(((a + b) / 2 + 90.0) % 180.0 - 90.0)


def _sides_fit_py(theta, ln_r, w, edge, start=None, n_iter: int = 3):
    """Signed pitch (deg) of an arm from the two long sides of its outline, and a point (theta, ln r) on
    its centre line (docs/measurements.md).

    Start from ``start`` (pitch, point) or the least-squares fit of all pixels; split the outline pixels
    (``edge``) by the side of the current centre line they lie on; drop each side's end pixels
    (``_side_pixels``); fit theta on ln r to each side; the pitch is the mean of the two sides' pitches,
    and the centre line runs halfway between them. Repeat. A side is a thin line, so its fit depends
    neither on the arm's width nor on how its ends are shaped. Falls back to the least-squares pitch when
    a side has too few pixels.

    The readable definition: ``_sides_fit`` runs the same steps compiled (``_sides_fit_nb``) and the tests
    check the two agree.
    """
    if start is None:
        start = (_pitch_deg(theta, ln_r, w), np.array([np.average(theta, weights=w), np.average(ln_r, weights=w)]))
    pitch, origin = start
    points = np.column_stack([theta[edge], ln_r[edge]])
    if len(points) < 10:
        return pitch, origin
    scale = np.exp(-ln_r[edge])
    for _ in range(n_iter):
        d = _direction(pitch)
        across = (points - origin) @ np.array([-d[1], d[0]])
        sides = []
        for on_side in (across > 0, across < 0):
            side = points[on_side]
            keep = _side_pixels(side, scale[on_side])
            if keep is None or np.ptp(side[keep, 1]) == 0:
                return pitch, origin
            sides.append(side[keep])
        new = _mean_pitch(*(_pitch_deg(s[:, 0], s[:, 1], np.ones(len(s))) for s in sides))
        origin = (sides[0].mean(axis=0) + sides[1].mean(axis=0)) / 2
        if abs(new - pitch) < 1e-3:
            return new, origin
        pitch = new
    return pitch, origin


# --- the same fit compiled (numba): the bootstrap repeats it hundreds of times per arm -----------------
# Each function mirrors the pure one above step by step; only the sums' rounding order differs.
@njit(cache=True)
def _line_pitch_nb(t, lnr, keep):
    """``_pitch_deg`` with unit weights over the kept points: (pitch deg, mean theta, mean ln r)."""
    n, mt, ml = 0, 0.0, 0.0
    for i in range(len(t)):
        if keep[i]:
            n += 1
            mt += t[i]
            ml += lnr[i]
    mt /= n
    ml /= n
    num, den = 0.0, 0.0
    for i in range(len(t)):
        if keep[i]:
            num += (t[i] - mt) * (lnr[i] - ml)
            den += (lnr[i] - ml) ** 2
    pitch = np.degrees(np.arctan2(-1.0, num / den))
    return (pitch + 90.0) % 180.0 - 90.0, mt, ml


@njit(cache=True)
def _side_pixels_nb(t, lnr, scale, n_iter):
    """``_side_pixels``: (keep mask, whether at least 5 points are kept)."""
    n = len(t)
    keep = np.ones(n, np.bool_)
    resid = np.empty(n)
    for _ in range(n_iter):
        k = 0
        mx, my = 0.0, 0.0
        for i in range(n):
            if keep[i]:
                k += 1
                mx += t[i]
                my += lnr[i]
        if k < 5:
            return keep, False
        mx /= k
        my /= k
        sxy, sxx, syy = 0.0, 0.0, 0.0
        for i in range(n):
            if keep[i]:
                x, y = t[i] - mx, lnr[i] - my
                sxy += x * y
                sxx += x * x
                syy += y * y
        angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        nx, ny = -np.sin(angle), np.cos(angle)
        for i in range(n):
            resid[i] = abs((t[i] - mx) * nx + (lnr[i] - my) * ny)
        sigma = 1.4826 * np.median(resid[keep])
        new = np.empty(n, np.bool_)
        changed = False
        for i in range(n):
            new[i] = resid[i] <= max(3 * sigma, 1.5 * scale[i])
            changed = changed or new[i] != keep[i]
        if not changed:
            break
        keep = new
    return keep, keep.sum() >= 5


@njit(cache=True)
def _sides_fit_nb(t, lnr, scale, pitch, o_t, o_l, n_iter):
    """``_sides_fit_py`` from a start (pitch, centre point) on the outline points only:
    (pitch, centre theta, centre ln r)."""
    n = len(t)
    if n < 10:
        return pitch, o_t, o_l
    for _ in range(n_iter):
        b = np.tan(np.radians(pitch))
        h = np.hypot(1.0, b)
        d0, d1 = 1.0 / h, -b / h
        across = (t - o_t) * -d1 + (lnr - o_l) * d0
        pitches = np.empty(2)
        centre_t, centre_l = 0.0, 0.0
        for s in range(2):
            on_side = across > 0 if s == 0 else across < 0
            st, sl = t[on_side], lnr[on_side]
            keep, ok = _side_pixels_nb(st, sl, scale[on_side], 4)
            if not ok:
                return pitch, o_t, o_l
            lo, hi = np.inf, -np.inf
            for i in range(len(sl)):
                if keep[i]:
                    lo = min(lo, sl[i])
                    hi = max(hi, sl[i])
            if hi - lo == 0:
                return pitch, o_t, o_l
            pitches[s], mt, ml = _line_pitch_nb(st, sl, keep)
            centre_t += mt / 2
            centre_l += ml / 2
        a = pitches[0]
        b2 = a + (pitches[1] - a + 90.0) % 180.0 - 90.0
        new = ((a + b2) / 2 + 90.0) % 180.0 - 90.0
        o_t, o_l = centre_t, centre_l
        if abs(new - pitch) < 1e-3:
            return new, o_t, o_l
        pitch = new
    return pitch, o_t, o_l


@njit(cache=True)
def _bootstrap_nb(t, lnr, scale, edge, members, offsets, choice, pitch, o_t, o_l, n_iter):
    """Pitches of the block-bootstrap resamples (``fit_arm``): resample b joins the blocks ``choice[b]``
    (pixel indices ``members[offsets[k]:offsets[k + 1]]``), in that order; a resample whose
    pixels all share one radius is skipped: (pitches, which resamples were fitted)."""
    n_boot, n_pick = choice.shape
    out = np.empty(n_boot)
    fitted = np.zeros(n_boot, np.bool_)
    for b in range(n_boot):
        lo, hi, n_edge = np.inf, -np.inf, 0
        for j in range(n_pick):
            k = choice[b, j]
            for m in range(offsets[k], offsets[k + 1]):
                i = members[m]
                lo = min(lo, lnr[i])
                hi = max(hi, lnr[i])
                if edge[i]:
                    n_edge += 1
        if hi - lo == 0:
            continue
        pt, pl, ps = np.empty(n_edge), np.empty(n_edge), np.empty(n_edge)
        e = 0
        for j in range(n_pick):
            k = choice[b, j]
            for m in range(offsets[k], offsets[k + 1]):
                i = members[m]
                if edge[i]:
                    pt[e], pl[e], ps[e] = t[i], lnr[i], scale[i]
                    e += 1
        out[b] = _sides_fit_nb(pt, pl, ps, pitch, o_t, o_l, n_iter)[0]
        fitted[b] = True
    return out, fitted


def _sides_fit(theta, ln_r, w, edge, start=None, n_iter: int = 3):
    """``_sides_fit_py`` compiled: same arguments, same (pitch, centre point) result."""
    if start is None:
        start = (_pitch_deg(theta, ln_r, w), np.array([np.average(theta, weights=w), np.average(ln_r, weights=w)]))
    pitch, origin = start
    edge = np.asarray(edge, bool)
    t, lnr = np.ascontiguousarray(theta[edge], np.float64), np.ascontiguousarray(ln_r[edge], np.float64)
    if len(t) < 10:
        return pitch, origin
    out = _sides_fit_nb(t, lnr, np.exp(-lnr), float(pitch), float(origin[0]), float(origin[1]), n_iter)
    return out[0], np.array([out[1], out[2]])


def fit_arm(theta_u, ln_r, weights, edge=None, n_boot: int = 200, n_blocks: int = 8, rng=None,
            min_elongation: float = 3.0) -> tuple[ArmFit | None, str | None]:
    """Fit one arm from unwrapped angles (rad), ln of disk-plane radii (ln px), pixel weights and, when
    known, which pixels are on the arm's outline (``edge``; without it, the least-squares fit alone)."""
    if np.ptp(ln_r) == 0 or _elongation(theta_u, ln_r, weights) < min_elongation:
        return None, f"not elongated in the log-polar plane (length/width below {min_elongation:g}): no pitch"
    if edge is None:
        edge = np.zeros(len(theta_u), bool)
    fit = (_sides_fit if _COMPILED else _sides_fit_py)(theta_u, ln_r, weights, edge)
    pitch = fit[0]
    # Neighbouring pixels of a thick arm are not independent, so resample whole stretches of the arm.
    rng = rng if rng is not None else np.random.default_rng(0)
    edges = np.linspace(ln_r.min(), ln_r.max(), n_blocks + 1)
    block = np.clip(np.searchsorted(edges, ln_r, side="right") - 1, 0, n_blocks - 1)
    members = [np.flatnonzero(block == k) for k in range(n_blocks)]
    members = [m for m in members if len(m)]
    if _COMPILED:
        # Resample k joins the blocks choice[k] (one draw gives the same random stream as the n_boot draws
        # below); each resample is fitted as below, compiled.
        choice = rng.integers(0, len(members), (n_boot, len(members)))
        theta_c, ln_r_c = np.ascontiguousarray(theta_u, np.float64), np.ascontiguousarray(ln_r, np.float64)
        boot, fitted = _bootstrap_nb(theta_c, ln_r_c, np.exp(-ln_r_c), np.asarray(edge, bool),
                                     np.concatenate(members), np.cumsum([0] + [len(m) for m in members]), choice,
                                     float(pitch), float(fit[1][0]), float(fit[1][1]), 2)
        boot = boot[fitted]
    else:
        boot = []
        for _ in range(n_boot):
            pick = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
            if np.ptp(ln_r[pick]) == 0:
                continue
            boot.append(_sides_fit_py(theta_u[pick], ln_r[pick], weights[pick], edge[pick], start=fit, n_iter=2)[0])
        boot = np.asarray(boot)
    # Near +-90 deg a resample can land on the other end of the range: fold onto the fit's branch.
    boot = pitch + (boot - pitch + 90.0) % 180.0 - 90.0
    # A robust standard deviation: the few resamples that repeat an end of the arm and miss much of a
    # side give wild pitches and would dominate a plain one.
    pitch_err = float(np.subtract(*np.percentile(boot, [84, 16])) / 2) if len(boot) > 1 else float("nan")
    b = np.tan(np.radians(pitch))
    m_theta, m_lnr = np.average(theta_u, weights=weights), np.average(ln_r, weights=weights)
    direction = _direction(pitch)  # of the fitted line in (theta, ln r)
    across = -(theta_u - m_theta) * direction[1] + (ln_r - m_lnr) * direction[0]
    t0, t1 = theta_u.min(), theta_u.max()
    ln_r_line = m_lnr - b * (np.linspace(t0, t1, 256) - m_theta)
    r_line = np.exp(ln_r_line)
    # ds = r dtheta sqrt(1 + b^2) along r = r0 exp(-b theta).
    arc = float(np.sqrt(1 + b * b) * np.trapezoid(r_line, np.linspace(t0, t1, 256)))
    r = np.exp(ln_r)
    return ArmFit(
        n_pixels=int(len(theta_u)), weight=float(weights.sum()), pitch=pitch, pitch_err=pitch_err,
        chirality=S_WISE if pitch > 0 else Z_WISE, r_start=float(r.min()), r_end=float(r.max()),
        theta_span=float(np.degrees(t1 - t0)), arc_length=arc,
        width_rms=float(np.sqrt(np.average(across**2, weights=weights))),
    ), None


@dataclass
class ArmPixels:
    """Pixels of one arm candidate: unwrapped angle (rad), ln disk-plane radius (ln px), fraction."""

    theta: np.ndarray
    ln_r: np.ndarray
    weight: np.ndarray
    edge: np.ndarray  # bool: on the region's outline (holes filled)
    n_pieces: int = 1


def _theta_line(piece: ArmPixels):
    """Weighted least-squares theta = a + beta ln r of a piece, and its rms theta residual (rad)."""
    mt, ml = np.average(piece.theta, weights=piece.weight), np.average(piece.ln_r, weights=piece.weight)
    beta = np.sum(piece.weight * (piece.theta - mt) * (piece.ln_r - ml)) / np.sum(piece.weight * (piece.ln_r - ml) ** 2)
    resid = piece.theta - (mt + beta * (piece.ln_r - ml))
    return mt, ml, beta, float(np.sqrt(np.average(resid**2, weights=piece.weight)))


def join_pieces(pieces: list[ArmPixels], max_offset: float = 0.5, min_elongation: float = 3.0) -> list[ArmPixels]:
    """Join the regions that lie on one log spiral: an arm broken by a gap is still one arm.

    Largest first, each piece joins the first arm whose fitted line, extended to the piece's radii,
    passes through it to within max(2.5 x the arm's rms angular residual, 0.15 rad), at most
    ``max_offset`` rad (well under the 90 deg between the arms of a four-armed spiral), after shifting
    the piece by whole turns.
    """
    arms: list[ArmPixels] = []
    for piece in sorted(pieces, key=lambda p: -p.weight.sum()):
        for i, arm in enumerate(arms):
            if np.ptp(arm.ln_r) == 0 or _elongation(arm.theta, arm.ln_r, arm.weight) < min_elongation:
                continue
            mt, ml, beta, rms = _theta_line(arm)
            offset = piece.theta - (mt + beta * (piece.ln_r - ml))
            turns = np.round(np.average(offset, weights=piece.weight) / (2 * np.pi))
            offset -= 2 * np.pi * turns
            tolerance = min(max(2.5 * rms, 0.15), max_offset)
            if np.sqrt(np.average(offset**2, weights=piece.weight)) <= tolerance:
                arms[i] = ArmPixels(np.concatenate([arm.theta, piece.theta - 2 * np.pi * turns]),
                                    np.concatenate([arm.ln_r, piece.ln_r]),
                                    np.concatenate([arm.weight, piece.weight]),
                                    np.concatenate([arm.edge, piece.edge]), arm.n_pieces + piece.n_pieces)
                break
        else:
            arms.append(piece)
    return arms


def outline_pixels(rows, cols) -> np.ndarray:
    """For each pixel of one region, whether it is on the region's outline (a 4-neighbour outside it).
    Holes are filled first: a gap inside an arm is not one of its sides."""
    r0, c0 = rows.min() - 1, cols.min() - 1
    inside = np.zeros((rows.max() - r0 + 2, cols.max() - c0 + 2), bool)
    inside[rows - r0, cols - c0] = True
    inside = ndimage.binary_fill_holes(inside)
    interior = ndimage.binary_erosion(inside)
    return ~interior[rows - r0, cols - c0]


def _unwrapped_pieces(rows, cols, u, v, radius, min_pixels, cuts=(0.15, 0.3, 0.45)):
    """The region as pieces with unwrapped angles: [(rows, cols, theta)], and the radius cut (px) used.

    Arms often join round the bulge or an inner ring; then the region goes round the centre and cannot be
    unwrapped. Dropping its inner part, at growing radius quantiles, separates such arms; a ring or a
    filled disk stays closed at every cut and gives (None, None).
    """
    shape = radius.shape
    theta = np.arctan2(v[rows, cols], u[rows, cols])
    unwrapped = unwrap_region(theta, rows, cols, shape)
    if unwrapped is not None:
        return [(rows, cols, unwrapped)], 0.0
    r = radius[rows, cols]
    for q in cuts:
        cut = float(np.quantile(r, q))
        keep = np.zeros(shape, bool)
        keep[rows[r >= cut], cols[r >= cut]] = True
        labels, _ = ndimage.label(keep, structure=EIGHT_NEIGHBOURS)
        found = []
        for (rr, cc) in ndimage.value_indices(labels, ignore_value=0).values():
            if len(rr) < min_pixels:
                continue
            t = unwrap_region(np.arctan2(v[rr, cc], u[rr, cc]), rr, cc, shape)
            if t is None:
                break
            found.append((rr, cc, t))
        else:
            if found:
                return found, cut
    return None, None


def measure_spiral(fraction: np.ndarray, *, centre: tuple[float, float] | None = None,
                   disk_axis_ratio: float | None = None, disk_position_angle: float | None = None,
                   relative_threshold: float = 0.4, inner_radius: float | None = None,
                   min_arm_pixels: int = 20, min_theta_span: float = 20.0, n_boot: int = 200,
                   seed: int = 0) -> SpiralMeasurement:
    """Measure spiral arms in an (H, W) fraction map (values in [0, 1], row 0 = north, east left).

    ``centre`` (row, col) in px, default the image centre; ``disk_axis_ratio`` b/a and
    ``disk_position_angle`` (deg east of north) deproject, default face-on. Arm pixels have a fraction
    >= ``relative_threshold`` x the map's maximum and a disk-plane radius >= ``inner_radius`` px (default
    10% of the 95th-percentile radius of those pixels, at least 2 px) so arms do not join through the
    bulge. Regions smaller than ``min_arm_pixels`` or winding less than ``min_theta_span`` deg are not
    arms. Pitch angles in deg, signed (> 0 S-wise), with block-bootstrap uncertainties (``n_boot``).
    """
    fraction = check_fraction_map(fraction, "spiral fraction map")
    if not 0 < relative_threshold <= 1:
        raise ValueError(f"relative_threshold must be in (0, 1], got {relative_threshold}")
    h, w = fraction.shape
    notes = []
    if centre is None:
        centre = ((h - 1) / 2, (w - 1) / 2)
    if len(centre) != 2 or not all(np.isfinite(c) for c in centre):
        raise ValueError(f"centre must be a finite (row, col) pair in px, got {centre}")
    if disk_axis_ratio is None or disk_position_angle is None:
        notes.append("no disk axis ratio and position angle: measured as if face-on")
        disk_axis_ratio, disk_position_angle = 1.0, 0.0
    check_disk(disk_axis_ratio, disk_position_angle)
    result = SpiralMeasurement(measured=False, notes=notes, centre_row=float(centre[0]),
                               centre_col=float(centre[1]), disk_axis_ratio=float(disk_axis_ratio),
                               disk_position_angle=float(disk_position_angle))
    peak = float(fraction.max())
    if peak <= 0:
        result.reason = "the spiral mask is empty (no pixel above 0)"
        return result
    result.threshold = relative_threshold * peak
    rows_all, cols_all = np.indices(fraction.shape)
    u, v = disk_coordinates(rows_all - centre[0], cols_all - centre[1], disk_axis_ratio, disk_position_angle)
    radius = np.hypot(u, v)
    selected = fraction >= result.threshold
    if inner_radius is None:
        inner_radius = max(2.0, 0.1 * float(np.percentile(radius[selected], 95)))
    result.inner_radius = float(inner_radius)
    selected &= radius >= inner_radius
    labels, n_regions = ndimage.label(selected, structure=EIGHT_NEIGHBOURS)
    pieces = []
    for rows, cols in ndimage.value_indices(labels, ignore_value=0).values():
        if len(rows) < min_arm_pixels:
            result.rejected_regions.append({"n_pixels": int(len(rows)),
                                            "reason": f"smaller than {min_arm_pixels} px"})
            continue
        found, cut = _unwrapped_pieces(rows, cols, u, v, radius, min_arm_pixels)
        if found is None:
            result.rejected_regions.append({"n_pixels": int(len(rows)),
                                            "reason": "goes round the centre (a ring, a filled disk or joined arms)"})
            continue
        if cut:
            result.notes.append(f"a region went round the centre: its part within {cut:.1f} px was left out")
        pieces += [ArmPixels(theta, np.log(radius[r, c]), fraction[r, c], outline_pixels(r, c))
                   for r, c, theta in found]
    rng = np.random.default_rng(seed)
    for arm_px in join_pieces(pieces):
        n_px = int(len(arm_px.theta))
        if np.degrees(np.ptp(arm_px.theta)) < min_theta_span:
            result.rejected_regions.append({"n_pixels": n_px, "reason": f"winds less than {min_theta_span:g} deg"})
            continue
        arm, why = fit_arm(arm_px.theta, arm_px.ln_r, arm_px.weight, arm_px.edge, n_boot=n_boot, rng=rng)
        if arm is None:
            result.rejected_regions.append({"n_pixels": n_px, "reason": why})
        else:
            arm.n_pieces = arm_px.n_pieces
            result.arms.append(arm)
    result.arms.sort(key=lambda a: -a.arc_length)
    result.n_arms = len(result.arms)
    if not result.arms:
        result.reason = (f"no arm: none of the {n_regions} regions above {result.threshold:.3g} "
                         "gave a log-spiral fit" if n_regions else f"no region above {result.threshold:.3g}")
        return result
    _summarise(result)
    return result


def _summarise(result: SpiralMeasurement) -> None:
    lengths = np.array([a.arc_length for a in result.arms])
    signs = np.array([1 if a.chirality == S_WISE else -1 for a in result.arms])
    s_len, z_len = lengths[signs > 0].sum(), lengths[signs < 0].sum()
    result.measured = True
    if s_len == z_len:
        result.notes.append("as much arc length winds S-wise as Z-wise: no chirality")
        dominant = np.ones(len(lengths), bool)
    else:
        result.chirality = S_WISE if s_len > z_len else Z_WISE
        result.chirality_agreement = float(max(s_len, z_len) / lengths.sum())
        dominant = signs == (1 if s_len > z_len else -1)
    wts = lengths[dominant] / lengths[dominant].sum()
    pitches = np.array([abs(a.pitch) for a in result.arms])[dominant]
    errs = np.array([a.pitch_err for a in result.arms])[dominant]
    result.pitch_abs = float(np.sum(wts * pitches))
    result.pitch = result.pitch_abs * (-1 if result.chirality == Z_WISE else 1)
    # Propagated fit errors, plus the arms' own spread when several arms disagree.
    fit_err = float(np.sqrt(np.nansum((wts * errs) ** 2)))
    spread = 0.0
    if dominant.sum() > 1:
        spread = float(np.sqrt(np.sum(wts * (pitches - result.pitch_abs) ** 2) / (dominant.sum() - 1)))
    result.pitch_err = float(np.hypot(fit_err, spread))
