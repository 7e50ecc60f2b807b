"""Pixel similarity and agglomerative clustering with log-spiral merge checks (SpArcFiRe steps 3, 4, 7).

Single-link clustering by decreasing similarity is Kruskal's order over the 8-neighbour edges, so it runs
as one pass of union-find over the sorted edges (numba). A merge of two clusters that both have at least
``min_check`` px is accepted only if one log spiral fits the union about as well as two fit the parts:
E(union) <= ratio * (E(a) + E(b)) with E the weighted squared radial error (plus a sub-pixel allowance,
0.05 px^2 per pixel, so that two perfect fits do not compare 0 with 0). A refused pair is tried again only
once one of the two clusters has grown by 10 %.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from evalcore.arcfinder.logspiral import fit_points

SUBPIXEL_ALLOWANCE = 0.05  # px^2 per pixel


def similarity_edges(strength: np.ndarray, theta: np.ndarray, cutoff: float):
    """Edges (a, b, similarity) between 8-neighbours with |v_a . v_b| >= cutoff, flat pixel indices,
    sorted by decreasing similarity (ties by index, so results are deterministic)."""
    h, w = strength.shape
    vx, vy = strength * np.cos(theta), strength * np.sin(theta)
    idx = np.arange(h * w).reshape(h, w)
    a_list, b_list, s_list = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, r1 = 0, h - dr
        c0, c1 = max(0, -dc), min(w, w - dc)
        sa = (slice(r0, r1), slice(c0, c1))
        sb = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
        sim = np.abs(vx[sa] * vx[sb] + vy[sa] * vy[sb])
        keep = sim >= cutoff
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
def agglomerate(edge_a, edge_b, n_pixels, px, py, pw, min_check, ratio):
    """Union-find over edges in the given order. Returns the root of every pixel."""
    parent = np.arange(n_pixels)
    size = np.ones(n_pixels, np.int64)
    head = np.arange(n_pixels)
    tail = np.arange(n_pixels)
    nxt = -np.ones(n_pixels, np.int64)
    err = -np.ones(n_pixels)  # cached fit error of a root; -1 = unknown
    # refused pairs of roots with their sizes then: the same pair is not re-fitted along its border until
    # one of the two has grown by 10 % (a refused merge rarely turns acceptable by a few more pixels)
    refused = dict()
    bx = np.empty(n_pixels)
    by = np.empty(n_pixels)
    bw = np.empty(n_pixels)
    for e in range(edge_a.shape[0]):
        ra = _find(parent, edge_a[e])
        rb = _find(parent, edge_b[e])
        if ra == rb:
            continue
        if size[ra] >= min_check and size[rb] >= min_check:
            lo, hi = min(ra, rb), max(ra, rb)
            key = lo * n_pixels + hi
            if key in refused:
                was_lo, was_hi = divmod(refused[key], n_pixels)
                if size[lo] * 10 < was_lo * 11 and size[hi] * 10 < was_hi * 11:
                    continue
            stamp = size[lo] * n_pixels + size[hi]
            for root in (ra, rb):
                if err[root] < 0:
                    m = _gather(head, nxt, root, -1, px, py, pw, bx, by, bw)
                    err[root] = fit_points(bx[:m], by[:m], bw[:m])[2]
            m = _gather(head, nxt, ra, rb, px, py, pw, bx, by, bw)
            merged_err = fit_points(bx[:m], by[:m], bw[:m])[2]
            if merged_err > ratio * (err[ra] + err[rb]) + 0.05 * m:
                refused[key] = stamp
                continue
            new_err = merged_err
        else:
            new_err = -1.0
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        nxt[tail[ra]] = head[rb]
        tail[ra] = tail[rb]
        err[ra] = new_err
    roots = np.empty(n_pixels, np.int64)
    for i in range(n_pixels):
        roots[i] = _find(parent, i)
    return roots


def cluster_pixels(strength: np.ndarray, theta: np.ndarray, weights: np.ndarray, centre: tuple[float, float],
                   cutoff: float, min_check: int, ratio: float) -> np.ndarray:
    """Root label (flat index of a member) of every pixel of the grid; singletons keep their own index."""
    h, w = strength.shape
    a, b, _ = similarity_edges(strength, theta, cutoff)
    rows, cols = np.divmod(np.arange(h * w), w)
    px = (cols - centre[1]).astype(np.float64)
    py = (centre[0] - rows).astype(np.float64)
    return agglomerate(a, b, h * w, px, py, weights.ravel().astype(np.float64), int(min_check), float(ratio))
