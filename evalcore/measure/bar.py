"""Bar length, width, position angle and axis ratio from a fraction map (no Django).

The reference study's recipe (Walmsley & Spindler 2023): keep the pixels at or above the 80th percentile
of the map's non-zero values; if they form exactly one region, the bar is the long side of that region's
minimum-area rotated rectangle. Here the same is repeated at other percentiles (70th-90th by default) and
the spread of lengths is the uncertainty; lengths go px -> arcsec (pixel scale) -> kpc (redshift and a flat
Lambda-CDM cosmology) and are also deprojected with the disk's axis ratio and position angle.

Beside it, on every bar the recipe measured, the half-maximum profile length (``profile_length``): along
the bar's axis, the distance between the points where the fraction falls to half its peak. Where the recipe
finds no bar, neither length is given, and both say why. On a consensus of volunteers that is the
length half of them drew the bar past, their median length, whatever the softness of the map; the
recipe's percentile threshold follows the map's soft tails instead (docs/measurements.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import MEASUREMENT_CODE_VERSION
from .cosmology import DEFAULT_COSMOLOGY, CosmologyParams, kpc_per_arcsec, redshift_problem
from .geometry import Rectangle, check_disk, deprojected_length, min_area_rectangle, pixel_corner_points
from .results import known_fields, plain

MAIN_PERCENTILE = 80.0
SPREAD_PERCENTILES = (70.0, 75.0, 80.0, 85.0, 90.0)
PROFILE_LEVEL = 0.5  # of the peak fraction
PROFILE_SPREAD_LEVELS = (0.4, 0.5, 0.6)
PROFILE_STEP = 0.25  # px between samples along the axis
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)  # what OpenCV's external contours follow


def check_fraction_map(fraction: np.ndarray, what: str = "fraction map") -> np.ndarray:
    """Validate an (H, W) map of fractions in [0, 1] and return it as float64."""
    arr = np.asarray(fraction)
    if arr.ndim != 2:
        raise ValueError(f"the {what} must be a 2-D (H, W) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise ValueError(f"the {what} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the {what} contains NaN or infinite values")
    lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
    if lo < -1e-9 or hi > 1 + 1e-9:
        raise ValueError(f"the {what} must hold fractions in [0, 1], got values from {lo:g} to {hi:g}")
    return np.clip(arr, 0.0, 1.0)


@dataclass
class ThresholdCut:
    """The bar region at one threshold percentile."""

    percentile: float
    threshold: float  # fraction value at that percentile of the non-zero pixels
    n_regions: int
    rectangle: Rectangle | None  # None unless exactly one region


def cut_at_percentile(fraction: np.ndarray, percentile: float) -> ThresholdCut:
    """Pixels >= the ``percentile``-th percentile of the non-zero values, their regions and rectangle.

    ``>=`` (not ``>``) so that a binary mask, whose non-zero values are all equal, keeps its pixels.
    """
    nonzero = fraction[fraction > 0]
    threshold = float(np.percentile(nonzero, percentile))
    labels, n_regions = ndimage.label(fraction >= threshold, structure=EIGHT_NEIGHBOURS)
    rect = None
    if n_regions == 1:
        rect = min_area_rectangle(pixel_corner_points(labels == 1))
    return ThresholdCut(percentile, threshold, int(n_regions), rect)


@dataclass
class ProfileLength:
    """The bar's length along its axis at a fraction level, and over the spread levels (px)."""

    length: float
    lengths: dict  # level -> length, px
    position_angle: float  # of the axis, deg east of north
    centre_row: float
    centre_col: float

    @property
    def err(self) -> float:
        return _half_range(list(self.lengths.values()))


def _crossing_length(fraction: np.ndarray, rect: Rectangle, level: float) -> float:
    """Distance (px) between the two points of the axis through ``rect`` where ``fraction`` (interpolated
    bilinearly) falls below ``level``, walking out from the highest point near the rectangle's centre."""
    pa = np.radians(rect.position_angle)
    d_row, d_col = -np.cos(pa), -np.sin(pa)  # north is up (-row), east is left (-col)
    reach = np.hypot(*fraction.shape)
    t = np.arange(-reach, reach + PROFILE_STEP / 2, PROFILE_STEP)
    prof = ndimage.map_coordinates(fraction, [rect.centre_row + t * d_row, rect.centre_col + t * d_col],
                                   order=1, mode="constant", cval=0.0)
    near = np.flatnonzero(np.abs(t) <= rect.length / 2)
    start = near[np.argmax(prof[near])]
    if prof[start] < level:
        return float("nan")  # the axis misses the bright part (a bent or hollow region)
    below = prof < level
    out = np.flatnonzero(below[start:])
    hi = start + out[0] if len(out) else len(t) - 1
    back = np.flatnonzero(below[:start + 1])
    lo = back[-1] if len(back) else 0

    def crossing(inside: int, outside: int) -> float:  # linear between the last sample above and the first below
        a, b = prof[inside], prof[outside]
        return t[inside] + (t[outside] - t[inside]) * (a - level) / (a - b)

    return float(crossing(hi - 1, hi) - crossing(lo + 1, lo))


def profile_length(fraction: np.ndarray, level: float = PROFILE_LEVEL,
                   spread_levels: tuple[float, ...] = PROFILE_SPREAD_LEVELS) -> tuple[ProfileLength | None, str | None]:
    """The half-maximum length of the bar in a fraction map: (result, None) or (None, reason).

    The axis is the long side of the minimum-area rectangle around the region, at ``level`` x the peak,
    that holds the peak; the length runs between the points of that axis where the fraction falls below
    ``level`` x the peak. The same at ``spread_levels`` gives the uncertainty (half the range).
    """
    peak = float(fraction.max())
    if peak <= 0:
        return None, "the bar mask is empty (no pixel above 0)"
    labels, _ = ndimage.label(fraction >= level * peak, structure=EIGHT_NEIGHBOURS)
    region = labels == labels[np.unravel_index(np.argmax(fraction), fraction.shape)]
    try:
        rect = min_area_rectangle(pixel_corner_points(region))
    except ValueError as exc:
        return None, f"no axis for the half-maximum profile: {exc}"
    lengths = {lev: _crossing_length(fraction, rect, lev * peak) for lev in sorted({level, *spread_levels})}
    if not np.isfinite(lengths[level]):
        return None, "the axis of the half-maximum region misses its bright part: no profile length"
    lengths = {lev: v for lev, v in lengths.items() if np.isfinite(v)}
    return ProfileLength(length=lengths[level], lengths=lengths, position_angle=rect.position_angle,
                         centre_row=rect.centre_row, centre_col=rect.centre_col), None


@dataclass
class BarMeasurement:
    """One bar measurement; lengths in px, arcsec, kpc; angles in deg east of north.

    ``measured`` is False with a ``reason`` when the recipe gives no bar. ``notes`` say which conversions
    were not possible (no pixel scale, no redshift, no disk orientation). ``*_err`` are half the range of
    the value over the threshold percentiles that gave one region (``percentiles_used``).
    """

    measured: bool
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    code_version: str = MEASUREMENT_CODE_VERSION
    threshold_percentile: float = MAIN_PERCENTILE
    threshold: float | None = None
    n_regions: int = 0
    percentiles_used: list[float] = field(default_factory=list)
    percentiles_skipped: list[float] = field(default_factory=list)  # more than one region there
    centre_row: float | None = None  # px
    centre_col: float | None = None  # px
    length_px: float | None = None
    length_px_err: float | None = None
    length_px_min: float | None = None
    length_px_max: float | None = None
    width_px: float | None = None
    width_px_err: float | None = None
    position_angle: float | None = None  # deg east of north, [0, 180)
    position_angle_err: float | None = None  # deg
    axis_ratio: float | None = None  # width / length
    deprojected_length_px: float | None = None
    deprojected_length_px_err: float | None = None
    pixel_scale: float | None = None  # arcsec / px
    length_arcsec: float | None = None
    length_arcsec_err: float | None = None
    width_arcsec: float | None = None
    deprojected_length_arcsec: float | None = None
    deprojected_length_arcsec_err: float | None = None
    redshift: float | None = None
    kpc_per_arcsec: float | None = None
    length_kpc: float | None = None
    length_kpc_err: float | None = None
    width_kpc: float | None = None
    deprojected_length_kpc: float | None = None
    deprojected_length_kpc_err: float | None = None
    disk_axis_ratio: float | None = None
    disk_position_angle: float | None = None  # deg east of north
    cosmology: dict = field(default_factory=lambda: DEFAULT_COSMOLOGY.to_dict())
    # The half-maximum profile length (``profile_length``) of a bar the recipe measured;
    # ``profile_reason`` says why not when there is none. Errors: half the range over PROFILE_SPREAD_LEVELS.
    profile_reason: str | None = None
    profile_level: float = PROFILE_LEVEL
    profile_length_px: float | None = None
    profile_length_px_err: float | None = None
    profile_position_angle: float | None = None
    profile_deprojected_length_px: float | None = None
    profile_deprojected_length_px_err: float | None = None
    profile_length_arcsec: float | None = None
    profile_length_arcsec_err: float | None = None
    profile_length_kpc: float | None = None
    profile_length_kpc_err: float | None = None
    profile_deprojected_length_kpc: float | None = None
    profile_deprojected_length_kpc_err: float | None = None

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> BarMeasurement:
        return cls(**known_fields(cls, data))


def _half_range(values) -> float:
    values = np.asarray(values, float)
    return float((values.max() - values.min()) / 2) if len(values) else float("nan")


def _pa_half_range(angles, reference: float) -> float:
    # Position angles wrap at 180 deg: compare each with the main one on the short way round.
    diffs = (np.asarray(angles, float) - reference + 90.0) % 180.0 - 90.0
    return _half_range(diffs)


def _profile_fields(fraction, pixel_scale, scale_kpc, disk) -> dict:
    """The ``profile_*`` fields of a BarMeasurement; ``scale_kpc`` kpc/arcsec or None, ``disk`` (b/a, PA)
    or None."""
    prof, reason = profile_length(fraction)
    if prof is None:
        return {"profile_reason": reason}
    out = {"profile_length_px": prof.length, "profile_length_px_err": prof.err,
           "profile_position_angle": prof.position_angle}
    if disk is not None:
        dep = {lev: float(deprojected_length(v, prof.position_angle, *disk)) for lev, v in prof.lengths.items()}
        out.update(profile_deprojected_length_px=dep[PROFILE_LEVEL],
                   profile_deprojected_length_px_err=_half_range(list(dep.values())))
    if pixel_scale is not None:
        out.update(profile_length_arcsec=prof.length * pixel_scale, profile_length_arcsec_err=prof.err * pixel_scale)
        if scale_kpc is not None:
            out.update(profile_length_kpc=out["profile_length_arcsec"] * scale_kpc,
                       profile_length_kpc_err=out["profile_length_arcsec_err"] * scale_kpc)
            if disk is not None:
                k = pixel_scale * scale_kpc
                out.update(profile_deprojected_length_kpc=out["profile_deprojected_length_px"] * k,
                           profile_deprojected_length_kpc_err=out["profile_deprojected_length_px_err"] * k)
    return out


def measure_bar(fraction: np.ndarray, *, pixel_scale: float | None = None, redshift: float | None = None,
                disk_axis_ratio: float | None = None, disk_position_angle: float | None = None,
                cosmology: CosmologyParams = DEFAULT_COSMOLOGY, percentile: float = MAIN_PERCENTILE,
                spread_percentiles: tuple[float, ...] = SPREAD_PERCENTILES) -> BarMeasurement:
    """Measure the bar in an (H, W) fraction map (values in [0, 1], row 0 = north, east left).

    ``pixel_scale`` in arcsec/px; ``disk_axis_ratio`` b/a in (0, 1] and ``disk_position_angle`` in deg
    east of north of the disk major axis (both needed to deproject). The length is the long side of the
    minimum-area rectangle around the single region at ``percentile``; the other percentiles only give the
    uncertainty. Lengths in px, arcsec and kpc (kpc needs a positive redshift).
    """
    fraction = check_fraction_map(fraction, "bar fraction map")
    for p in (percentile, *spread_percentiles):
        if not 0 <= p <= 100:
            raise ValueError(f"threshold percentiles must be in [0, 100], got {p}")
    if pixel_scale is not None and not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise ValueError(f"the pixel scale must be a positive number of arcsec/px, got {pixel_scale}")
    has_disk = disk_axis_ratio is not None and disk_position_angle is not None
    if has_disk:
        check_disk(disk_axis_ratio, disk_position_angle)
    base = dict(threshold_percentile=percentile, pixel_scale=pixel_scale, redshift=redshift,
                disk_axis_ratio=disk_axis_ratio, disk_position_angle=disk_position_angle,
                cosmology=cosmology.to_dict())
    if not np.any(fraction > 0):
        return BarMeasurement(measured=False, reason="the bar mask is empty (no pixel above 0)", **base,
                              profile_reason="the bar mask is empty (no pixel above 0)")
    scale_kpc = None if pixel_scale is None or redshift_problem(redshift) else kpc_per_arcsec(redshift, cosmology)
    main = cut_at_percentile(fraction, percentile)
    if main.rectangle is None:
        reason = (f"{main.n_regions} separate regions at or above the {percentile:g}th percentile "
                  f"({main.threshold:.3g}); the recipe needs exactly one")
        return BarMeasurement(measured=False, threshold=main.threshold, n_regions=main.n_regions, reason=reason,
                              profile_reason=f"no bar measured: {reason}", **base)
    if main.rectangle.length <= 0:
        reason = "the bar region has no extent"
        return BarMeasurement(measured=False, reason=reason, profile_reason=f"no bar measured: {reason}", **base)
    # the half-maximum length of the bar the recipe found; never a length where it found none
    base.update(_profile_fields(fraction, pixel_scale, scale_kpc,
                                (disk_axis_ratio, disk_position_angle) if has_disk else None))

    cuts = [main] + [cut_at_percentile(fraction, p) for p in spread_percentiles if p != percentile]
    good = [c for c in cuts if c.rectangle is not None]
    rects = [c.rectangle for c in good]
    rect = main.rectangle
    lengths = [r.length for r in rects]
    m = BarMeasurement(
        measured=True, threshold=main.threshold, n_regions=1, **base,
        percentiles_used=sorted(c.percentile for c in good),
        percentiles_skipped=sorted(c.percentile for c in cuts if c.rectangle is None),
        centre_row=rect.centre_row, centre_col=rect.centre_col,
        length_px=rect.length, length_px_err=_half_range(lengths), length_px_min=min(lengths),
        length_px_max=max(lengths), width_px=rect.width, width_px_err=_half_range([r.width for r in rects]),
        position_angle=rect.position_angle,
        position_angle_err=_pa_half_range([r.position_angle for r in rects], rect.position_angle),
        axis_ratio=rect.axis_ratio,
    )
    if has_disk:
        dep = [float(deprojected_length(r.length, r.position_angle, disk_axis_ratio, disk_position_angle))
               for r in rects]
        m.deprojected_length_px = dep[0]
        m.deprojected_length_px_err = _half_range(dep)
    else:
        m.notes.append("no disk axis ratio and position angle: no deprojected length")
    if pixel_scale is None:
        m.notes.append("no pixel scale: lengths in px only")
        return m
    m.length_arcsec = m.length_px * pixel_scale
    m.length_arcsec_err = m.length_px_err * pixel_scale
    m.width_arcsec = m.width_px * pixel_scale
    if has_disk:
        m.deprojected_length_arcsec = m.deprojected_length_px * pixel_scale
        m.deprojected_length_arcsec_err = m.deprojected_length_px_err * pixel_scale
    problem = redshift_problem(redshift)
    if problem:
        m.notes.append(problem)
        return m
    scale = scale_kpc
    m.kpc_per_arcsec = scale
    m.length_kpc = m.length_arcsec * scale
    m.length_kpc_err = m.length_arcsec_err * scale
    m.width_kpc = m.width_arcsec * scale
    if has_disk:
        m.deprojected_length_kpc = m.deprojected_length_arcsec * scale
        m.deprojected_length_kpc_err = m.deprojected_length_arcsec_err * scale
    return m
