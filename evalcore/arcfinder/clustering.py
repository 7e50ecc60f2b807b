"""Pixel similarity and agglomerative clustering with log-spiral merge checks (SpArcFiRe steps 3, 4, 7).

Similarity is the dot product of neighbouring orientation vectors, as SpArcFiRe computes it: signed, with
the vectors' angles in (-pi/2, pi/2], so two ridges on either side of the vertical do not link. Pixels
that the unsharp-masked image leaves at 0 take no part.

Single-link clustering by decreasing similarity is Kruskal's order over the 8-neighbour edges, so it runs
as one pass of union-find over the sorted edges (numba). A merge of two clusters that both have more than
``min_check`` px is SpArcFiRe's merge check (``calcArcMergeErr`` with its defaults): each cluster is fitted
alone, its pixels more than 3 standard deviations above the mean squared error are dropped, the two are
weighted to the same total and fitted as one; the merge is refused when, for either cluster, the joint
fit's error on its pixels is more than ``ratio`` times its own fit's. A refused pair is tried again only
once one of the two clusters has grown by 10 % (SpArcFiRe drops the links between them at that moment).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from evalcore.arcfinder.logspiral import fit_points, fit_points_rel

SUBPIXEL_ALLOWANCE = 0.05  # px^2 per pixel (secondary merges)
OUTLIER_SD = 3.0           # SpArcFiRe's outlierSd: pixels this far above the mean error are left out


def similarity_edges(strength: np.ndarray, theta: np.ndarray, cutoff: float, valid: np.ndarray | None = None):
    """Edges (a, b, similarity) between 8-neighbours with v_a . v_b >= cutoff (both pixels ``valid``), flat
    pixel indices, sorted by decreasing similarity (ties by index, so results are deterministic)."""
    h, w = strength.shape
    vx, vy = strength * np.cos(theta), strength * np.sin(theta)
    idx = np.arange(h * w).reshape(h, w)
    a_list, b_list, s_list = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, r1 = 0, h - dr
        c0, c1 = max(0, -dc), min(w, w - dc)
        sa = (slice(r0, r1), slice(c0, c1))
        sb = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
        sim = vx[sa] * vx[sb] + vy[sa] * vy[sb]
        keep = sim >= cutoff
        if valid is not None:
            keep &= valid[sa] & valid[sb]
        a_list.append(idx[sa][keep])
        b_list.append(idx[sb][keep])
        s_list.append(sim[keep])
    a = np.concatenate(a_list).astype(np.int64)
    b = np.concatenate(b_list).astype(np.int64)
    s = np.concatenate(s_list)
    order = np.lexsort((a, -s))
    return a[order], b[order], s[order]


@njit(cache=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True)
def _gather(head, nxt, root_a, root_b, px, py, pw, out_x, out_y, out_w):
    n = 0
    for root in (root_a, root_b):
        if root < 0:
            continue
        i = head[root]
        while i >= 0:
            out_x[n] = px[i]
            out_y[n] = py[i]
            out_w[n] = pw[i]
            n += 1
            i = nxt[i]
    return n


@njit(cache=True)
def _inliers_fit(x, y, w):
    """Fit, drop pixels whose weighted squared error is more than OUTLIER_SD standard deviations above the
    mean, fit again. Returns (weights with outliers at 0, ln r0, k, error of the second fit)."""
    n = x.shape[0]
    a, k, err, start, extent, rel, r = fit_points_rel(x, y, w)
    e = np.empty(n)
    for i in range(n):
        d = r[i] - math.exp(a + k * rel[i])
        e[i] = w[i] * d * d
    mean = e.mean()
    sd = math.sqrt(((e - mean) ** 2).sum() / max(n - 1, 1))
    out = w.copy()
    dropped = 0
    if sd > 0:
        for i in range(n):
            if (e[i] - mean) / sd > OUTLIER_SD:
                out[i] = 0.0
                dropped += 1
    if dropped == 0:
        return out, a, k, err
    keep = out > 0
    a, k, err, _, _ = fit_points(x[keep], y[keep], out[keep])
    return out, a, k, err


@njit(cache=True)
def merge_error_ratio(x1, y1, w1, x2, y2, w2):
    """SpArcFiRe's merge error ratio of two clusters (see the module docstring): the larger of the two
    ratios (joint fit's error on a cluster's pixels) / (the cluster's own fit's error)."""
    w1, _, _, err1 = _inliers_fit(x1, y1, w1)
    w2, _, _, err2 = _inliers_fit(x2, y2, w2)
    total1, total2 = w1.sum(), w2.sum()
    if total1 <= 0 or total2 <= 0:
        return math.inf
    # equal total weight for both clusters in the joint fit (the errors scale with the weights)
    s2 = total1 / total2
    keep1, keep2 = w1 > 0, w2 > 0
    x = np.concatenate((x1[keep1], x2[keep2]))
    y = np.concatenate((y1[keep1], y2[keep2]))
    w = np.concatenate((w1[keep1], w2[keep2] * s2))
    a, k, _, _, _, rel, r = fit_points_rel(x, y, w)
    m1 = keep1.sum()
    joint1 = joint2 = 0.0
    for i in range(x.shape[0]):
        d = r[i] - math.exp(a + k * rel[i])
        if i < m1:
            joint1 += w[i] * d * d
        else:
            joint2 += w[i] * d * d
    own1, own2 = err1, err2 * s2
    if own1 <= 0 or own2 <= 0:
        return 0.0 if (joint1 <= 0 and joint2 <= 0) else math.inf
    return max(joint1 / own1, joint2 / own2)


@njit(cache=True)
def agglomerate(edge_a, edge_b, n_pixels, px, py, pw, min_check, ratio):
    """Union-find over edges in the given order. Returns the root of every pixel."""
    parent = np.arange(n_pixels)
    size = np.ones(n_pixels, np.int64)
    head = np.arange(n_pixels)
    tail = np.arange(n_pixels)
    nxt = -np.ones(n_pixels, np.int64)
    # refused pairs of roots with their sizes then: the same pair is not re-fitted along its border until
    # one of the two has grown by 10 % (a refused merge rarely turns acceptable by a few more pixels)
    refused = dict()
    bx = np.empty(n_pixels)
    by = np.empty(n_pixels)
    bw = np.empty(n_pixels)
    bx2 = np.empty(n_pixels)
    by2 = np.empty(n_pixels)
    bw2 = np.empty(n_pixels)
    for e in range(edge_a.shape[0]):
        ra = _find(parent, edge_a[e])
        rb = _find(parent, edge_b[e])
        if ra == rb:
            continue
        if size[ra] > min_check and size[rb] > min_check:
            lo, hi = min(ra, rb), max(ra, rb)
            key = lo * n_pixels + hi
            if key in refused:
                was_lo, was_hi = divmod(refused[key], n_pixels)
                if size[lo] * 10 < was_lo * 11 and size[hi] * 10 < was_hi * 11:
                    continue
            stamp = size[lo] * n_pixels + size[hi]
            m1 = _gather(head, nxt, ra, -1, px, py, pw, bx, by, bw)
            m2 = _gather(head, nxt, rb, -1, px, py, pw, bx2, by2, bw2)
            if merge_error_ratio(bx[:m1], by[:m1], bw[:m1], bx2[:m2], by2[:m2], bw2[:m2]) > ratio:
                refused[key] = stamp
                continue
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        nxt[tail[ra]] = head[rb]
        tail[ra] = tail[rb]
    roots = np.empty(n_pixels, np.int64)
    for i in range(n_pixels):
        roots[i] = _find(parent, i)
    return roots


def cluster_pixels(strength: np.ndarray, theta: np.ndarray, weights: np.ndarray, centre: tuple[float, float],
                   cutoff: float, min_check: int, ratio: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Root label (flat index of a member) of every pixel of the grid; singletons keep their own index.
    ``valid``: pixels that may join a cluster (all by default)."""
    h, w = strength.shape
    a, b, _ = similarity_edges(strength, theta, cutoff, valid)
    rows, cols = np.divmod(np.arange(h * w), w)
    px = (cols - centre[1]).astype(np.float64)
    py = (centre[0] - rows).astype(np.float64)
    return agglomerate(a, b, h * w, px, py, weights.ravel().astype(np.float64), int(min_check), float(ratio))
