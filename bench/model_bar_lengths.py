"""How long a model's bars are against the truth, by bar size, straight from the model file (docs/measurements.md,
"What limits the model's bar lengths").

For the synthetic barred galaxies of one split in the current database (the benchmark survey imported with
``make_synthetic --import``): the model's bar map on each survey cutout, its half-maximum profile length
(``profile_length``, the default level and two lower ones), against the true projected bar length on that grid
(``truth["images"]["survey_cutout"]["bar_length_px"]``). Prints the mean relative error (bias), the scatter
(standard deviation, and 1.4826 x MAD) and the same per true length in px. No masks are stored.

``--image-edge`` prints instead what the image alone says, with the truth's help: along the true bar axis, the
steepest fall of the cutout's RGB brightness within 0.6-1.4 x the true half-length, as the bar's end.

    export DATABASE_URL=... MEDIA_ROOT=...   # the database and media holding the benchmark survey
    .venv/bin/python bench/model_bar_lengths.py --model-version NAME [--split val]   # ~20 s for 70 bars
    .venv/bin/python bench/model_bar_lengths.py --model-file best.pt --split train
    .venv/bin/python bench/model_bar_lengths.py --image-edge --split test
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LEVELS = (0.5, 0.4, 0.3)
SIZE_BINS = ((0, 20), (20, 30), (30, 40), (40, 1000))


def barred_cutouts(split: str):
    """(name, RGB cutout, truth dict, true bar length px) of the split's synthetic barred galaxies."""
    from segmentation.models import Galaxy
    from segmentation.selectors.galaxies import galaxy_ids_in_split
    from segmentation.selectors.images import image_rgb

    ids = galaxy_ids_in_split(split, Galaxy.objects.filter(synthetic=True, truth__bar_length_kpc__isnull=False))
    for g in Galaxy.objects.filter(pk__in=ids).order_by("pk"):
        image = g.images.filter(kind="survey_cutout").first()
        if image is not None:
            yield g.name, image_rgb(image), g.truth, g.truth["images"]["survey_cutout"]["bar_length_px"]


def image_edge_length(rgb: np.ndarray, truth: dict, true_px: float) -> float:
    """Twice the distance from the centre, along the true bar axis, of the RGB brightness's steepest fall
    within 0.6-1.4 x the true half-length (a 3 px strip, both sides averaged, smoothed by 2 px)."""
    from scipy import ndimage

    grey = rgb.astype(float).mean(axis=2)
    pa = np.radians(truth["bar_position_angle_deg"])
    d_row, d_col = -np.cos(pa), -np.sin(pa)  # north up, east left
    centre = (np.array(grey.shape) - 1) / 2
    s = np.arange(0, grey.shape[0] / 2, 0.25)
    profile = np.zeros_like(s)
    for side in (1, -1):
        for off in (-1, 0, 1):
            rows = centre[0] + side * s * d_row + off * d_col
            cols = centre[1] + side * s * d_col - off * d_row
            profile += ndimage.map_coordinates(grey, [rows, cols], order=1) / 6
    fall = np.gradient(ndimage.gaussian_filter1d(profile, 2), s)
    window = (s >= 0.3 * true_px) & (s <= 0.7 * true_px)
    return 2 * float(s[window][np.argmin(fall[window])])


def summary(label: str, errors: np.ndarray, true_px: np.ndarray) -> None:
    ok = np.isfinite(errors)
    e, t = errors[ok], true_px[ok]
    robust = 1.4826 * np.median(np.abs(e - np.median(e)))
    print(f"{label}: n {len(e)} (no length {int((~ok).sum())}), bias {e.mean():+.1%}, scatter {e.std(ddof=1):.1%}, "
          f"robust {robust:.1%}")
    for lo, hi in SIZE_BINS:
        m = (t >= lo) & (t < hi)
        if m.sum() > 1:
            print(f"    true {lo}-{hi if hi < 1000 else ''} px: n {m.sum():3d}, bias {e[m].mean():+.1%}, "
                  f"scatter {e[m].std(ddof=1):.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-version", help="name of a stored model version")
    which.add_argument("--model-file", help="a model file or training checkpoint (best.pt)")
    which.add_argument("--image-edge", action="store_true", help="the image's brightness edge instead of a model")
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()
    rows = list(barred_cutouts(args.split))
    true_px = np.array([r[3] for r in rows])
    if args.image_edge:
        lengths = np.array([image_edge_length(rgb, truth, t) for _, rgb, truth, t in rows])
        summary(f"{args.split}, image brightness edge on the true axis", lengths / true_px - 1, true_px)
        return

    from evalcore.measure.bar import profile_length
    from evalcore.unet.infer import Predictor
    from segmentation.models import ModelVersion

    if args.model_version:
        with ModelVersion.objects.get(name=args.model_version).weights.open("rb") as fh:
            weights = fh.read()
    else:
        weights = args.model_file
    predictor = Predictor(weights, threads=args.threads, mode="reduced")
    maps = predictor.predict([r[1] for r in rows])
    for level in LEVELS:
        lengths = []
        for m in maps:
            found, _ = profile_length(m[1], level=level, spread_levels=())
            lengths.append(found.length if found else np.nan)
        summary(f"{args.split}, profile length at {level:g} of the peak", np.array(lengths) / true_px - 1, true_px)


if __name__ == "__main__":
    main()
