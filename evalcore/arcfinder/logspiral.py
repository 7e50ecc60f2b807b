"""Log-spiral fits r(theta) = r0 exp(k (theta - theta_start)) to a set of pixels (SpArcFiRe step 5).

Angles are "math" angles (rad, counter-clockwise as displayed: x = col - centre, y = centre - row). The
pixels' angles are unwrapped from the largest empty angular gap, so an arc never straddles its own cut.
The fit is a weighted least-squares line in (theta, ln r), refined by Gauss-Newton steps on the radial
residuals r - r(theta) that SpArcFiRe minimises. Pitch angle = atan(-k) deg (SpArcFiRe's ``atan(b)``
with r = r0 exp(-b (theta - theta0))); positive pitch = S-wise arms, negative = Z-wise.
Compiled with numba: the clustering calls the fit hundreds of times per galaxy.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

TWO_PI = 2.0 * math.pi
WRAP_EXTENT = 1.75 * math.pi  # arcs cut at their largest gap that still cover more than this may wrap


@njit(cache=True)
def unwrap_from_gap(theta):
    """Angles in [0, 2 pi) -> (angles relative to the start of the arc in [0, 2 pi), start angle)."""
    n = theta.shape[0]
    order = np.argsort(theta)
    best_gap = -1.0
    start = 0.0
    for i in range(n):
        a = theta[order[i]]
        b = theta[order[(i + 1) % n]]
        gap = b - a
        if gap < 0 or (i == n - 1):
            gap = b + TWO_PI - a
        if gap > best_gap:
            best_gap = gap
            start = b
    rel = np.empty(n)
    for i in range(n):
        t = theta[i] - start
        while t < 0:
            t += TWO_PI
        while t >= TWO_PI:
            t -= TWO_PI
        rel[i] = t
    return rel, start


@njit(cache=True)
def unwrap_connected(x, y, theta, r, reach):
    """Angles unwrapped along the pixels' own connectivity (neighbours within ``reach`` px), starting at
    the innermost pixel: arcs of more than one turn keep increasing angles. Returns (rel, start)."""
    n = x.shape[0]
    xmin, ymin = x.min(), y.min()
    bw = int(round(x.max() - xmin)) + 1
    bh = int(round(y.max() - ymin)) + 1
    box = -np.ones((bh, bw), np.int64)
    bx = np.empty(n, np.int64)
    by = np.empty(n, np.int64)
    for i in range(n):
        bx[i] = int(round(x[i] - xmin))
        by[i] = int(round(y[i] - ymin))
        box[by[i], bx[i]] = i
    out = np.empty(n)
    seen = np.zeros(n, np.bool_)
    queue = np.empty(n, np.int64)
    done = 0
    while done < n:
        # next seed: the innermost pixel not reached yet (a piece cut off from the rest starts afresh)
        seed = -1
        for i in range(n):
            if not seen[i] and (seed < 0 or r[i] < r[seed]):
                seed = i
        if done == 0:
            out[seed] = theta[seed]
        else:
            best = 1e300
            for j in range(n):  # continue from the nearest pixel already unwrapped
                if seen[j]:
                    d = (x[j] - x[seed]) ** 2 + (y[j] - y[seed]) ** 2
                    if d < best:
                        best = d
                        delta = theta[seed] - theta[j]
                        delta -= TWO_PI * math.floor((delta + math.pi) / TWO_PI)
                        out[seed] = out[j] + delta
        seen[seed] = True
        head, tail = 0, 1
        queue[0] = seed
        done += 1
        while head < tail:
            i = queue[head]
            head += 1
            for dy in range(-reach, reach + 1):
                yy = by[i] + dy
                if yy < 0 or yy >= bh:
                    continue
                for dx in range(-reach, reach + 1):
                    xx = bx[i] + dx
                    if xx < 0 or xx >= bw:
                        continue
                    j = box[yy, xx]
                    if j < 0 or seen[j]:
                        continue
                    delta = theta[j] - theta[i]
                    delta -= TWO_PI * math.floor((delta + math.pi) / TWO_PI)
                    out[j] = out[i] + delta
                    seen[j] = True
                    queue[tail] = j
                    tail += 1
                    done += 1
    lo = out.min()
    rel = out - lo
    start = lo - TWO_PI * math.floor(lo / TWO_PI)
    return rel, start


@njit(cache=True)
def fit_rel(rel, r, w):
    """Weighted fit of r = r0 exp(k rel). Returns (ln r0, k, sum of w (r - fit)^2)."""
    n = rel.shape[0]
    sw = swx = swy = swxx = swxy = 0.0
    for i in range(n):
        y = math.log(max(r[i], 0.5))
        sw += w[i]
        swx += w[i] * rel[i]
        swy += w[i] * y
        swxx += w[i] * rel[i] * rel[i]
        swxy += w[i] * rel[i] * y
    if sw <= 0:
        return 0.0, 0.0, 0.0
    den = sw * swxx - swx * swx
    if abs(den) < 1e-12 * max(sw * swxx, 1e-300):
        k = 0.0
    else:
        k = (sw * swxy - swx * swy) / den
    a = (swy - k * swx) / sw
    # Gauss-Newton on the radial residuals, starting from the log-linear solution
    for _ in range(4):
        j00 = j01 = j11 = g0 = g1 = 0.0
        for i in range(n):
            f = math.exp(a + k * rel[i])
            res = r[i] - f
            da, dk = f, f * rel[i]
            j00 += w[i] * da * da
            j01 += w[i] * da * dk
            j11 += w[i] * dk * dk
            g0 += w[i] * da * res
            g1 += w[i] * dk * res
        det = j00 * j11 - j01 * j01
        if abs(det) < 1e-12:
            break
        step_a = (j11 * g0 - j01 * g1) / det
        step_k = (j00 * g1 - j01 * g0) / det
        a += step_a
        k += step_k
        if abs(step_a) < 1e-6 and abs(step_k) < 1e-7:
            break
    err = 0.0
    for i in range(n):
        res = r[i] - math.exp(a + k * rel[i])
        err += w[i] * res * res
    return a, k, err


@njit(cache=True)
def fit_points_rel(x, y, w):
    """:func:`fit_points` that also returns the unwrapped angle of every pixel (rad from the start) and
    its radius: (ln r0, k, error, start, extent, rel, r)."""
    n = x.shape[0]
    theta = np.empty(n)
    r = np.empty(n)
    for i in range(n):
        t = math.atan2(y[i], x[i])
        if t < 0:
            t += TWO_PI
        theta[i] = t
        r[i] = math.hypot(x[i], y[i])
    rel, start = unwrap_from_gap(theta)
    a, k, err = fit_rel(rel, r, w)
    if rel.max() > WRAP_EXTENT:
        # (nearly) a full turn: the arc may wind on beyond 2 pi, so follow it instead (allowArcBeyond2pi)
        rel2, start2 = unwrap_connected(x, y, theta, r, 2)
        a2, k2, err2 = fit_rel(rel2, r, w)
        if err2 < err:
            rel, start, a, k, err = rel2, start2, a2, k2, err2
    extent = 0.0
    for i in range(n):
        extent = max(extent, rel[i])
    return a, k, err, start, extent, rel, r


@njit(cache=True)
def fit_points(x, y, w):
    """Fit pixels at (x, y) px from the centre (math axes) with weights w.
    Returns (ln r0, k, weighted squared radial error px^2, start angle rad, angular extent rad)."""
    a, k, err, start, extent, _, _ = fit_points_rel(x, y, w)
    return a, k, err, start, extent


def pitch_angle_deg(k: float) -> float:
    """Pitch angle (deg) of r = r0 exp(k theta); positive = S-wise (SpArcFiRe's sign)."""
    return float(np.degrees(np.arctan(-k)))


def chirality(pitch_deg: float) -> str:
    return "S" if pitch_deg > 0 else "Z"


def arc_length(r0: float, k: float, extent: float) -> float:
    """Length (px) of the log spiral r0 exp(k t) for t in [0, extent] rad."""
    if abs(k) < 1e-9:
        return float(r0 * extent)
    return float(np.sqrt(1 + k * k) / abs(k) * abs(r0 * np.exp(k * extent) - r0))


def draw_log_spiral(shape: tuple[int, int], pitch_deg: float, r_start: float, r_end: float,
                    width: float = 3.0, arms: int = 2, centre: tuple[float, float] | None = None,
                    phase: float = 0.0) -> np.ndarray:
    """A float image (0..1) of ``arms`` log-spiral arms of the given pitch (deg; positive = S-wise) from
    radius r_start to r_end (px) with a Gaussian cross-section of FWHM ~ ``width`` px. For tests and benches."""
    h, w = shape
    cy, cx = centre if centre is not None else ((h - 1) / 2, (w - 1) / 2)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = cols - cx, cy - rows
    r = np.hypot(x, y)
    theta = np.arctan2(y, x)
    k = -np.tan(np.radians(pitch_deg))
    out = np.zeros(shape)
    sigma = width / 2.355
    for arm in range(arms):
        t0 = phase + arm * TWO_PI / arms
        for wind in range(-4, 5):  # every winding of the arm that can pass a pixel
            rr = r_start * np.exp(k * (theta - t0 + TWO_PI * wind))
            on = (rr >= r_start) & (rr <= r_end)
            out = np.maximum(out, np.where(on, np.exp(-0.5 * ((r - rr) / sigma) ** 2), 0))
    return out
