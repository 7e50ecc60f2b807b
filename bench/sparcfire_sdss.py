"""The arc finder and a U-Net against SpArcFiRe's own results on the real SDSS galaxies of the fixtures.

    .venv/bin/python bench/sparcfire_sdss.py                              # the arc finder only
    .venv/bin/python bench/sparcfire_sdss.py --model MODEL.pt [--threshold 0.5]
    .venv/bin/python bench/sparcfire_sdss.py --model-version NAME         # a stored version (DATABASE_URL)
        [--fixtures ../shared/fixtures/sparcfire-sdss] [--json OUT.json] [--no-progress]

Arc finder (SpArcFiRe's default settings) on each input FITS array as stored, SpArcFiRe's frame, against
SpArcFiRe's galaxy.csv, arcs and cluster masks (``evalcore.arcfinder.sparcfire_agreement``): chirality
agreement (all galaxies, and those whose two longest SpArcFiRe arcs agree), the median absolute difference
of |pitch| with a bootstrap interval and with each galaxy left out, arm-pixel IoU.

A model (``--model`` file or ``--model-version``): the image as the project stores it (the FITS read by
``evalcore.formats.imagefiles.read_image``: north up, one band shown grey), its spiral map at the threshold
(``--threshold``; a stored version uses its own marking threshold, see segmentation/services/sources/model.py)
against SpArcFiRe's arm mask, next to the arc finder's mask, all in that north-up frame; and its
confident pixels (spiral or bar fraction at or above the threshold) on foreground stars, found in the
image itself (``evalcore.pixels.objects.find_stars``: compact, PSF-like peaks away from the galaxy's centre),
counted apart for sources inside the galaxy's own detected light (``objects.galaxy_region``), where in one
band a star superposed on the disk and a star-forming knot of an arm look alike.
Targets: the model overlaps SpArcFiRe at least as much as the arc finder; no confident pixel on a star.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from tqdm import tqdm  # noqa: E402

from evalcore.arcfinder import ArcFinderParams  # noqa: E402
from evalcore.arcfinder import sparcfire_output as so  # noqa: E402
from evalcore.arcfinder.sparcfire_agreement import compare_galaxy, summarise  # noqa: E402

DEFAULT_FIXTURES = ROOT.parent / "shared" / "fixtures" / "sparcfire-sdss"
CHIRALITY_TARGET = 0.8
PITCH_TARGET_DEG = 5.0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def bootstrap_median(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    v = np.asarray(values, float)
    draws = np.median(v[rng.integers(0, len(v), (n, len(v)))], axis=1)
    return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def arcfinder_section(fixtures: Path, progress: bool) -> tuple[list, dict]:
    names = (fixtures / "ids.txt").read_text().split()
    rows = [compare_galaxy(fixtures / "G.out", name, fits.getdata(fixtures / "G.in" / f"{name}.fits")
                           .astype(np.float64), ArcFinderParams())
            for name in tqdm(names, desc="arc finder", unit="galaxy", disable=not progress)]
    summary = summarise(rows)
    print(f"{'galaxy':<20} {'px':>7} {'SpArcFiRe':>10} {'top-2':>10} {'ours':>5} {'pitch SpA':>9} {'ours':>7} "
          f"{'|d|':>5} {'IoU':>5} {'IoU K':>5} {'IoU H':>5} {'crop':>9} {'s':>5}")
    for r in rows:
        def num(v, fmt="{:.1f}"):
            return fmt.format(v) if v is not None else "-"
        print(f"{r.name:<20} {r.size_px[1]:>3}x{r.size_px[0]:<3} {r.sparcfire_chirality or '-':>10} "
              f"{r.top2_agreement:>10} {r.ours_chirality or '-':>5} {num(r.sparcfire_pitch_deg):>9} "
              f"{num(r.ours_pitch_deg):>7} {num(r.abs_pitch_difference_deg):>5} {r.iou_input_frame:>5.2f} "
              f"{num(r.iou_k_mask, '{:.2f}'):>5} {num(r.iou_grid, '{:.2f}'):>5} "
              f"{r.crop_radius_px:>4.0f}/{num(r.sparcfire_crop_radius_px, '{:.0f}'):<4} {r.seconds:>5.2f}")
    for line in summary.lines():
        print(line)
    diffs = [r.abs_pitch_difference_deg for r in rows if r.abs_pitch_difference_deg is not None]
    lo, hi = bootstrap_median(diffs)
    loo = [float(np.median(diffs[:i] + diffs[i + 1:])) for i in range(len(diffs))]
    print(f"|pitch| median difference: 95% bootstrap interval [{lo:.1f}, {hi:.1f}] deg; with one galaxy left out "
          f"{min(loo):.1f} to {max(loo):.1f} deg")
    share = summary.top2_agree_chirality_agree / summary.top2_agree_n if summary.top2_agree_n else float("nan")
    print(f"targets: chirality where SpArcFiRe's two longest arcs agree {share:.0%} (>= {CHIRALITY_TARGET:.0%}): "
          f"{'met' if share >= CHIRALITY_TARGET else 'NOT met'}; |pitch| median difference "
          f"{summary.median_abs_pitch_difference_deg:.1f} deg (<= {PITCH_TARGET_DEG:g}): "
          f"{'met' if summary.median_abs_pitch_difference_deg <= PITCH_TARGET_DEG else 'NOT met'}")
    extra = {"median_abs_pitch_difference_ci_deg": [lo, hi], "leave_one_out_median_deg": [min(loo), max(loo)]}
    return rows, {**summary.__dict__, **extra}


def load_predictor(args):
    """(Predictor, {structure: threshold}, label) for --model or --model-version."""
    from evalcore.unet.infer import Predictor

    if args.model:
        thresholds = {"spiral": args.threshold, "bar": args.threshold}
        try:
            return Predictor(args.model.read_bytes(), mode="fp32"), thresholds, str(args.model)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            raise SystemExit(f"--model {args.model}: not a model file this code can read ({exc})") from None
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    django.setup()
    from segmentation.models import ModelVersion
    from segmentation.services.sources.model import marking_thresholds

    version = ModelVersion.objects.filter(name=args.model_version).first()
    if version is None:
        raise SystemExit(f"no model version {args.model_version!r} in {os.environ.get('DATABASE_URL', 'SQLite')}")
    with version.weights.open("rb") as fh:
        predictor = Predictor(fh.read(), mode="fp32")
    thresholds = {st: t for st, (t, _) in marking_thresholds(version).items()}
    if args.threshold_given:
        thresholds = {"spiral": args.threshold, "bar": args.threshold}
    return predictor, thresholds, version.name


def model_section(fixtures: Path, rows: list, args, progress: bool) -> dict:
    from evalcore.formats.imagefiles import read_image
    from evalcore.pixels.objects import find_stars, galaxy_region

    predictor, thresholds, label = load_predictor(args)
    print(f"\nmodel {label}: spiral at >= {thresholds['spiral']:g}, bar at >= {thresholds['bar']:g}")
    print(f"{'galaxy':<20} {'IoU model':>9} {'IoU arcs':>8} {'model covers':>12} {'stars':>5} {'star px':>7} "
          f"{'confident on stars':>18} {'of them on the galaxy':>21} {'max on stars':>12}")
    out = []
    totals = {"model": [0, 0], "arcs": [0, 0]}
    for r in tqdm(rows, desc="model", unit="galaxy", disable=not progress):
        data = read_image(fixtures / "G.in" / f"{r.name}.fits", max_pixels=4096 ** 2, max_bytes=200 * 2 ** 20)
        raw = fits.getdata(fixtures / "G.in" / f"{r.name}.fits").astype(np.float64)

        def frame(a, flipped=data.flipped):
            return a[::-1] if flipped else a  # SpArcFiRe's frame -> the stored, north-up one

        sp = so.read_galaxy(fixtures / "G.out", r.name, fixtures / "G.out" / r.name, input_shape=raw.shape)
        theirs = frame(sp.mask)
        ours = frame(_arcfinder_mask(raw))
        fractions = predictor.predict_one(data.rgb)
        spiral = fractions[0] >= thresholds["spiral"]
        confident = spiral | (fractions[1] >= thresholds["bar"])
        stars = find_stars(frame(raw))
        on_stars = int((confident & stars.mask).sum())
        region, (yy, xx) = galaxy_region(frame(raw)), np.mgrid[0:raw.shape[0], 0:raw.shape[1]]
        on_disk = np.zeros(raw.shape, bool)
        for star in stars.stars:
            if region[int(round(star.row)), int(round(star.col))]:
                on_disk |= (yy - star.row) ** 2 + (xx - star.col) ** 2 <= star.radius_px ** 2
        on_galaxy = int((confident & stars.mask & on_disk).sum())
        max_on = float(fractions[:, stars.mask].max()) if stars.mask.any() else float("nan")
        row = {"galaxy": r.name, "iou_model": iou(spiral, theirs), "iou_arcfinder": iou(ours, theirs),
               "model_covers": float((spiral & theirs).sum() / max(theirs.sum(), 1)), "stars": len(stars.stars),
               "star_pixels": int(stars.mask.sum()), "confident_on_stars": on_stars,
               "confident_on_stars_inside_galaxy": on_galaxy, "max_on_stars": max_on}
        for key, mask in (("model", spiral), ("arcs", ours)):
            totals[key][0] += int((mask & theirs).sum())
            totals[key][1] += int((mask | theirs).sum())
        out.append(row)
        print(f"{r.name:<20} {row['iou_model']:>9.2f} {row['iou_arcfinder']:>8.2f} {row['model_covers']:>12.2f} "
              f"{row['stars']:>5} {row['star_pixels']:>7} {on_stars:>18} {on_galaxy:>21} {max_on:>12.3f}")
    med_model = float(np.nanmedian([o["iou_model"] for o in out]))
    med_arcs = float(np.nanmedian([o["iou_arcfinder"] for o in out]))
    pooled = {k: v[0] / v[1] if v[1] else float("nan") for k, v in totals.items()}
    on_stars = sum(o["confident_on_stars"] for o in out)
    print(f"overlap with SpArcFiRe's arms: model median IoU {med_model:.3f} (pooled {pooled['model']:.3f}), arc "
          f"finder {med_arcs:.3f} (pooled {pooled['arcs']:.3f}): target (model >= arc finder) "
          f"{'met' if med_model >= med_arcs else 'NOT met'}")
    print(f"confident pixels on foreground stars: {on_stars} in {sum(o['stars'] for o in out)} stars: target (none) "
          f"{'met' if on_stars == 0 else 'NOT met'}")
    inside = sum(o["confident_on_stars_inside_galaxy"] for o in out)
    print(f"  of them {on_stars - inside} on sources outside the galaxy's detected light and {inside} on compact "
          "sources inside it (a star on the disk or a knot of an arm: one band cannot tell)")
    return {"model": label, "thresholds": thresholds, "galaxies": out, "median_iou_model": med_model,
            "median_iou_arcfinder": med_arcs, "pooled_iou": pooled, "confident_pixels_on_stars": on_stars,
            "confident_pixels_on_stars_inside_galaxy": inside}


def _arcfinder_mask(raw: np.ndarray) -> np.ndarray:
    from evalcore.arcfinder import run_arcfinder

    return run_arcfinder(raw).labels > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--model", type=Path, help="a model file (as written by training or export_model)")
    group.add_argument("--model-version", help="a stored model version's name (the database of DATABASE_URL)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="fraction at which the model's maps count as marked (default: the version's own, else 0.5)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    args.threshold_given = args.threshold is not None
    args.threshold = 0.5 if args.threshold is None else args.threshold
    if not (args.fixtures / "ids.txt").is_file():
        raise SystemExit(f"{args.fixtures} holds no ids.txt: not the sparcfire-sdss fixtures")
    if args.model and not args.model.is_file():
        raise SystemExit(f"--model {args.model}: no such file")
    progress = not args.no_progress
    rows, summary = arcfinder_section(args.fixtures, progress)
    report = {"arcfinder": {"galaxies": [r.to_dict() for r in rows], "summary": summary}}
    if args.model or args.model_version:
        report["model"] = model_section(args.fixtures, rows, args, progress)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
