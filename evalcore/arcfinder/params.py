"""Parameters of the arc finder. Defaults are SpArcFiRe's (its ``-S_settings.txt`` names in comments)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

# Bump when a change of the code can change any output for the same input and parameters.
CODE_VERSION = "arcfinder-py 2.0"

# Parameters of earlier code versions, ignored when their stored producers are read back.
RETIRED = frozenset({"asinh_softening", "crop_sigmas", "white_percentile"})


@dataclass(frozen=True)
class ArcFinderParams:
    # --- input -------------------------------------------------------------------------------------
    band: str = "r"                    # which plane of a g,r,z cube is read ("g", "r", "z")
    rgb_mode: str = "luminance"        # RGB input: "luminance" (Rec. 601) or one of "red","green","blue"
    fits_black_quantile: float = 0.25  # band fluxes, SpArcFiRe's -convert-FITS -p LOWER UPPER N: black level
    fits_asinh_quantile: float = 0.75  # ... asinh scale (quantile of the galaxy's pixels)
    fits_asinh_repeats: int = 2        # ... how many times the asinh is applied
    # --- preprocessing (medFiltRad, useImageStandardization, useDeProjectStretch, resizeDims, ...) -----
    median_filter_radius: int = 1      # medFiltRad: 1 -> 3x3 median (px)
    standardize: bool = True           # useImageStandardization: centre on the fitted ellipse and crop
    deproject: bool = True             # useDeProjectStretch: stretch the fitted ellipse into a circle
    min_crop_radius: float = 4.0       # px of the input (the crop is the fitted ellipse's, see preprocess.py)
    crop_to_detected_light: bool = True  # widen the crop to hold the galaxy's detected region (preprocess.py)
    resize: int = 256                  # resizeDims (square)
    resample_order: int = 3            # spline order of the resampling to the grid (1 = bilinear)
    unsharp_amount: float = 6.0        # unsharpMaskAmt
    unsharp_sigma: float = 25.0        # unsharpMaskSigma (px of the 256 grid)
    # --- orientation field (numOrientationFieldLevels) ---------------------------------------------
    orientation_levels: int = 3
    filter_radius: int = 5             # 11x11 kernels
    n_orientations: int = 9
    denoise_distance: int = 5          # px to the 4 diagonal neighbours
    # --- clustering (stopThres, mergeChkMinClusSz, errRatioThres, clusSizeCutoff, ...) --------------
    stop_threshold: float = 0.15       # stopThres: similarities below this are 0
    merge_check_min_size: int = 25     # mergeChkMinClusSz (px)
    error_ratio_threshold: float = 2.5  # errRatioThres
    cluster_size_cutoff: int = 150     # clusSizeCutoff (px of the 256 grid)
    delete_center_cluster: bool = True  # deleteClusterContainingCenter
    fit_using_non_usm: bool = True     # fitUsingNonUsmIVals: weights from the image before unsharp masking
    secondary_merge: bool = True
    secondary_merge_distance: float = 12.8  # px of a 256 grid (scaled with resize) between two clusters to try a merge
    # --- bar (lookForBulge / barCandCutoff) --------------------------------------------------------
    find_bar: bool = True
    bar_candidate_cutoff: float = 1.5  # score of the best bar direction over the median direction
    # --- safety ------------------------------------------------------------------------------------
    min_size: int = 16                 # px: smaller images are refused
    max_pixels: int = 4096 * 4096      # larger images are refused (memory and time of one job)

    def as_dict(self) -> dict:
        """Plain JSON-able dict (goes into Producer.parameters)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ArcFinderParams:
        """Inverse of :meth:`as_dict`; unknown keys are refused so typos do not pass silently."""
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k not in RETIRED}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown arc finder parameter(s): {', '.join(unknown)}")
        return cls(**data)


# How the reference study (Walmsley & Spindler 2023) ran SpArcFiRe: on the 256x256 centre crops with
# standardisation and deprojection off, so the mask lives directly on the image's grid.
STUDY_PARAMS = replace(ArcFinderParams(), standardize=False, deproject=False)
