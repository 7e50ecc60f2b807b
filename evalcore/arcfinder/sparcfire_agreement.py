"""The arc finder against real SpArcFiRe runs, galaxy by galaxy, on SpArcFiRe's own inputs (no Django).

Both read the input FITS array as it is stored (SpArcFiRe's frame, row 0 = first FITS row), so S/Z letters
and signed pitch angles compare directly. Per galaxy: the arc-length-weighted chirality of each, whether
SpArcFiRe's own two longest arcs agree with each other (its ``top2_chirality_agreement``), the galaxy pitch
of each (arc-length-weighted |pitch| over the dominant chirality's arcs, SpArcFiRe's
``pa_alenWtd_avg_domChiralityOnly``), the arm-pixel overlap (IoU) in the input frame (against its grid
clusters reprojected exactly, and against its own ``-K_clusMask-reprojected.png``, which lies about 1.5 px
off) and on the 256 px grid (against ``-H_clusMask-merged.png``), and the crop radius of each.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evalcore.arcfinder import sparcfire_output as so
from evalcore.arcfinder.params import ArcFinderParams
from evalcore.arcfinder.pipeline import run_arcfinder


@dataclass
class GalaxyAgreement:
    name: str
    size_px: tuple[int, int]
    sparcfire_chirality: str | None      # "S"/"Z" in SpArcFiRe's frame (arc-length weighted)
    top2_agreement: str                  # SpArcFiRe's verdict on its two longest arcs ("agree", "disagree", ...)
    ours_chirality: str | None
    sparcfire_pitch_deg: float | None    # signed, + = S-wise
    ours_pitch_deg: float | None
    abs_pitch_difference_deg: float | None  # | |ours| - |SpArcFiRe's| |
    iou_input_frame: float               # arm pixels against SpArcFiRe's (its -H mask reprojected exactly)
    iou_k_mask: float | None             # ... against its own -K reprojection as written (about 1.5 px off)
    iou_grid: float | None               # arm pixels on the 256 px grid against the -H mask (same grid only)
    crop_radius_px: float
    sparcfire_crop_radius_px: float | None
    seconds: float

    @property
    def chirality_agrees(self) -> bool | None:
        if self.sparcfire_chirality is None or self.ours_chirality is None:
            return None
        return self.sparcfire_chirality == self.ours_chirality

    def to_dict(self) -> dict:
        return {**asdict(self), "chirality_agrees": self.chirality_agrees}


@dataclass
class AgreementSummary:
    n: int
    chirality_agree: int
    chirality_n: int
    top2_agree_chirality_agree: int      # among galaxies whose two longest SpArcFiRe arcs agree
    top2_agree_n: int
    median_abs_pitch_difference_deg: float
    pitch_n: int
    median_iou_input_frame: float
    median_iou_k_mask: float
    median_iou_grid: float
    median_crop_ratio: float             # ours / SpArcFiRe's

    def lines(self) -> list[str]:
        return [
            f"chirality agrees on {self.chirality_agree} of {self.chirality_n} galaxies; on "
            f"{self.top2_agree_chirality_agree} of {self.top2_agree_n} where SpArcFiRe's two longest arcs agree",
            f"|pitch| median absolute difference {self.median_abs_pitch_difference_deg:.1f} deg (n {self.pitch_n})",
            f"arm-pixel IoU, median: {self.median_iou_input_frame:.2f} in the input frame (SpArcFiRe's -H clusters "
            f"reprojected), {self.median_iou_grid:.2f} on its 256 px grid (-H mask), {self.median_iou_k_mask:.2f} "
            "against its -K mask as written",
            f"crop radius ours / SpArcFiRe's, median {self.median_crop_ratio:.2f}",
        ]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def compare_galaxy(out_dir: Path, name: str, data: np.ndarray, params: ArcFinderParams) -> GalaxyAgreement:
    """One galaxy: ``data`` is its input FITS array as stored; ``out_dir`` the run's output folder."""
    out_dir = Path(out_dir)
    sp = so.read_galaxy(out_dir, name, out_dir / name, input_shape=data.shape)
    start = time.perf_counter()
    result = run_arcfinder(data, params)
    seconds = time.perf_counter() - start
    gal = sp.galaxy
    theirs = so.in_image_frame(gal, flipped=False)
    h_path = out_dir / name / f"{name}{so.H_SUFFIX}"
    iou_grid = None
    if h_path.is_file() and params.resize == 256:
        iou_grid = _iou(result.labels_grid > 0, so.binary_mask(h_path))
    diff = None
    if theirs["pitch_angle_deg"] is not None and result.pitch_angle is not None:
        diff = abs(abs(result.pitch_angle) - abs(theirs["pitch_angle_deg"]))
    crop = gal.get("cropRad")
    return GalaxyAgreement(
        name=name, size_px=tuple(int(v) for v in data.shape), sparcfire_chirality=theirs["chirality"],
        top2_agreement=str(gal.get("top2_chirality_agreement") or ""), ours_chirality=result.chirality,
        sparcfire_pitch_deg=theirs["pitch_angle_deg"], ours_pitch_deg=result.pitch_angle,
        abs_pitch_difference_deg=diff, iou_input_frame=_iou(result.labels > 0, sp.mask),
        iou_k_mask=_iou(result.labels > 0, sp.k_mask) if sp.k_mask is not None else None,
        iou_grid=iou_grid, crop_radius_px=result.geometry.crop_radius,
        sparcfire_crop_radius_px=float(crop) if isinstance(crop, (int, float)) else None, seconds=seconds,
    )


def summarise(rows: list[GalaxyAgreement]) -> AgreementSummary:
    with_both = [r for r in rows if r.chirality_agrees is not None]
    top2 = [r for r in with_both if r.top2_agreement == "agree"]
    diffs = [r.abs_pitch_difference_deg for r in rows if r.abs_pitch_difference_deg is not None]
    grids = [r.iou_grid for r in rows if r.iou_grid is not None]
    ks = [r.iou_k_mask for r in rows if r.iou_k_mask is not None]
    ratios = [r.crop_radius_px / r.sparcfire_crop_radius_px for r in rows if r.sparcfire_crop_radius_px]
    nan = float("nan")
    return AgreementSummary(
        n=len(rows), chirality_agree=sum(bool(r.chirality_agrees) for r in with_both), chirality_n=len(with_both),
        top2_agree_chirality_agree=sum(bool(r.chirality_agrees) for r in top2), top2_agree_n=len(top2),
        median_abs_pitch_difference_deg=float(np.median(diffs)) if diffs else nan, pitch_n=len(diffs),
        median_iou_input_frame=float(np.nanmedian([r.iou_input_frame for r in rows])) if rows else nan,
        median_iou_k_mask=float(np.median(ks)) if ks else nan,
        median_iou_grid=float(np.median(grids)) if grids else nan,
        median_crop_ratio=float(np.median(ratios)) if ratios else nan,
    )
