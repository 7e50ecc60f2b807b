"""The whole method for one galaxy: :func:`run_arcfinder` (what a generation job calls per galaxy)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from evalcore.arcfinder.bar import BarCandidate, bar_like, find_bar
from evalcore.arcfinder.clustering import cluster_pixels, merge_error_ratio
from evalcore.arcfinder.errors import ArcFinderError
from evalcore.arcfinder.inputs import detection_plane, to_plane
from evalcore.arcfinder.logspiral import arc_length, chirality, fit_points, pitch_angle_deg
from evalcore.arcfinder.orientation import orientation_field
from evalcore.arcfinder.params import CODE_VERSION, ArcFinderParams
from evalcore.arcfinder.preprocess import Geometry, clean_plane, standardise, to_input_frame

ARC_COLUMNS = ("label", "alen_rank", "math_initial_theta", "pitch_angle", "chirality", "math_initial_radius",
               "relative_theta_start", "relative_theta_end", "r_start", "r_end", "arc_length", "num_pixels",
               "err_per_pixel", "err_per_len", "mean_intensity", "is_bar")


@dataclass
class ArcFinderResult:
    """Everything found on one galaxy. Radii and lengths are px of the standardised grid, angles rad
    (``math_initial_theta``, ``relative_theta_*``) or deg (pitch angles; positive = S-wise)."""
    labels: np.ndarray             # (H, W) int32 in the input frame: 0 = nothing, k = arc of alen_rank k
    labels_grid: np.ndarray        # (N, N) int32 on the standardised grid
    arcs: list[dict]               # one dict per arc, keys ARC_COLUMNS, longest first
    pitch_angle: float | None      # deg, arc-length-weighted mean over the dominant chirality's arcs, signed
    pitch_angle_longest: float | None
    chirality: str | None          # "S" or "Z" by arc-length-weighted vote, None without arcs
    spiral_mask: np.ndarray        # (H, W) bool: any arm (non-bar) arc
    bar: BarCandidate | None
    bar_mask: np.ndarray           # (H, W) bool: arcs that lie along the bar candidate
    geometry: Geometry
    input_description: str
    params: ArcFinderParams
    warnings: list[str] = field(default_factory=list)

    def details(self) -> dict:
        """JSON-able extras for Mask.details: arcs, galaxy-level values, geometry, bar."""
        return {
            "code_version": CODE_VERSION,
            "input": self.input_description,
            "chirality": self.chirality,
            "pitch_angle_deg": self.pitch_angle,
            "pitch_angle_longest_deg": self.pitch_angle_longest,
            "geometry": self.geometry.as_dict(),
            "bar": self.bar.as_dict() if self.bar else None,
            "arcs": self.arcs,
            "warnings": self.warnings,
        }


def _cluster_members(roots: np.ndarray, min_size: int) -> list[np.ndarray]:
    """Pixel indices of every cluster of at least ``min_size`` px (most pixels are singletons)."""
    counts = np.bincount(roots, minlength=len(roots))
    big = np.flatnonzero(counts >= min_size)
    keep = np.flatnonzero(np.isin(roots, big))
    order = keep[np.argsort(roots[keep], kind="stable")]
    bounds = np.cumsum(counts[big])
    return np.split(order, bounds[:-1]) if len(big) else []


def _fit(members: np.ndarray, px: np.ndarray, py: np.ndarray, pw: np.ndarray):
    return fit_points(px[members], py[members], pw[members])


def _secondary_merge(clusters: list[np.ndarray], px, py, pw, params: ArcFinderParams) -> list[np.ndarray]:
    """SpArcFiRe's secondary merge (``mergeClustersByFit``): of the pairs of clusters that come within
    ``secondary_merge_distance`` px of each other, merge the one with the lowest merge error ratio
    (:func:`merge_error_ratio`), as long as it is at most the error-ratio threshold; repeat."""
    clusters = list(clusters)
    reach = params.secondary_merge_distance * params.resize / 256.0

    def ratio(a, b):
        return merge_error_ratio(px[a], py[a], pw[a], px[b], py[b], pw[b])

    pts = [np.column_stack([px[c], py[c]]) for c in clusters]
    trees = [cKDTree(p) for p in pts]

    def near(i, j):
        d, _ = trees[i].query(pts[j], k=1, distance_upper_bound=reach)
        return bool(np.isfinite(d).any())

    dist = {}
    for i in range(len(clusters)):
        for j in range(i + 1, len(clusters)):
            if near(i, j):
                dist[(i, j)] = ratio(clusters[i], clusters[j])
    alive = set(range(len(clusters)))
    while dist:
        (i, j), best = min(dist.items(), key=lambda kv: (kv[1], kv[0]))
        if best > params.error_ratio_threshold:
            break
        clusters[i] = np.concatenate([clusters[i], clusters[j]])
        alive.discard(j)
        pts[i] = np.column_stack([px[clusters[i]], py[clusters[i]]])
        trees[i] = cKDTree(pts[i])
        dist = {k: v for k, v in dist.items() if i not in k and j not in k}
        for other in alive - {i}:
            a, b = min(i, other), max(i, other)
            if near(a, b):
                dist[(a, b)] = ratio(clusters[a], clusters[b])
    return [clusters[k] for k in sorted(alive)]


def _summary(arcs: list[dict]) -> tuple[str | None, float | None, float | None]:
    arms = [a for a in arcs if not a["is_bar"]]
    if not arms:
        return None, None, None
    s_len = sum(a["arc_length"] for a in arms if a["pitch_angle"] > 0)
    z_len = sum(a["arc_length"] for a in arms if a["pitch_angle"] <= 0)
    dom = "S" if s_len >= z_len else "Z"
    chosen = [a for a in arms if a["chirality"] == dom]
    total = sum(a["arc_length"] for a in chosen)
    mean_abs = sum(abs(a["pitch_angle"]) * a["arc_length"] for a in chosen) / total if total > 0 else None
    pitch = None if mean_abs is None else (mean_abs if dom == "S" else -mean_abs)
    return dom, pitch, arms[0]["pitch_angle"]


def run_arcfinder(image, params: ArcFinderParams | None = None) -> ArcFinderResult:
    """Find spiral arcs in one galaxy image.

    ``image``: a 2-D single-band array (e.g. FITS data, linear), a (3, H, W) g,r,z flux cube (the band
    ``params.band``; both converted as SpArcFiRe converts a FITS band) or an (H, W, 3) RGB picture
    (luminance); see ``inputs.py``.
    Returns an :class:`ArcFinderResult` whose masks are on the input's (H, W) grid.
    Raises :class:`ArcFinderError` (and nothing else on bad pixels) for blank, all-NaN, too small
    (< ``params.min_size`` px a side) or too large (> ``params.max_pixels``) images.
    """
    params = params or ArcFinderParams()
    plane, description = to_plane(image, params)
    shape = plane.shape
    clean = clean_plane(plane, params)
    std = standardise(clean, params, detection=detection_plane(image, params))
    n = params.resize
    strength, theta = orientation_field(std.image, params.orientation_levels, params.filter_radius,
                                        params.n_orientations, params.denoise_distance)
    weights = np.clip(std.plain, 1e-3, None) if params.fit_using_non_usm else np.clip(std.image, 1e-3, None)
    roots = cluster_pixels(strength, theta, weights, std.grid_centre, params.stop_threshold,
                           params.merge_check_min_size, params.error_ratio_threshold, valid=std.plain > 0)
    rows, cols = np.divmod(np.arange(n * n), n)
    px = (cols - std.grid_centre[1]).astype(np.float64)
    py = (std.grid_centre[0] - rows).astype(np.float64)
    pw = weights.ravel().astype(np.float64)
    warnings: list[str] = list(std.warnings)
    clusters = _cluster_members(roots, max(2, params.merge_check_min_size))
    if params.delete_center_cluster:
        cr, cc = (int(round(v)) for v in std.grid_centre)
        centre_root = roots[cr * n + cc]
        kept = [c for c in clusters if roots[c[0]] != centre_root]
        if len(kept) < len(clusters):
            warnings.append("deleted the cluster containing the centre")
        clusters = kept
    clusters = [c for c in clusters if len(c) >= params.cluster_size_cutoff]
    if params.secondary_merge and len(clusters) > 1:
        clusters = _secondary_merge(clusters, px, py, pw, params)
    bar = find_bar(strength, theta, std.grid_centre, params.bar_candidate_cutoff) if params.find_bar else None
    arcs = []
    for members in clusters:
        a, k, err, start, extent = _fit(members, px, py, pw)
        r0 = float(np.exp(a))
        alen = arc_length(r0, k, extent)
        r_far = float(r0 * np.exp(k * extent))
        pitch = pitch_angle_deg(k)
        is_bar = bar is not None and bar_like(np.column_stack([px[members], py[members]]), bar)
        arcs.append({
            "members": members,
            "math_initial_theta": float(start), "pitch_angle": pitch, "chirality": chirality(pitch),
            "math_initial_radius": r0, "relative_theta_start": 0.0, "relative_theta_end": float(extent),
            "r_start": min(r0, r_far), "r_end": max(r0, r_far), "arc_length": alen,
            "num_pixels": int(len(members)), "err_per_pixel": float(err / len(members)),
            "err_per_len": float(err / alen) if alen > 0 else float("nan"),
            "mean_intensity": float(std.plain.ravel()[members].mean()), "is_bar": bool(is_bar),
        })
    arcs.sort(key=lambda row: -row["arc_length"])
    labels_grid = np.zeros(n * n, np.int32)
    for rank, arc in enumerate(arcs, start=1):
        labels_grid[arc.pop("members")] = rank
        arc["label"] = arc["alen_rank"] = rank
    arcs = [{key: arc[key] for key in ARC_COLUMNS} for arc in arcs]
    labels_grid = labels_grid.reshape(n, n)
    labels = to_input_frame(labels_grid, std.geometry, shape)
    bar_labels = [a["label"] for a in arcs if a["is_bar"]]
    bar_mask = np.isin(labels, bar_labels) if bar_labels else np.zeros(shape, bool)
    spiral_mask = (labels > 0) & ~bar_mask
    if arcs and not spiral_mask.any():
        warnings.append("arcs found on the grid cover no pixel of the input frame")
    dom, pitch, longest = _summary(arcs)
    return ArcFinderResult(labels=labels, labels_grid=labels_grid, arcs=arcs, pitch_angle=pitch,
                           pitch_angle_longest=longest, chirality=dom, spiral_mask=spiral_mask, bar=bar,
                           bar_mask=bar_mask, geometry=std.geometry, input_description=description,
                           params=params, warnings=warnings)


__all__ = ["ARC_COLUMNS", "ArcFinderError", "ArcFinderResult", "run_arcfinder"]
