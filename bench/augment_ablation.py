"""Which training augmentations matter: short trainings on the synthetic survey, one switch changed at a time,
scored on validation galaxies in the training style and in styles the model never saw.

    nice -n 10 .venv/bin/python bench/augment_ablation.py [--n 200] [--render 128] [--size 64] [--epochs 10]
        [--threads 2] [--runs all_on,none,study,-scale,-colour_jitter,...] [--seeds 7] [--out results.json]

The galaxies are drawn and rendered in memory by the synthetic survey's population and renderer (the survey
cutout: g,r,z, Legacy Survey colours) and learned from their true masks (train 70%, validation 30%, by
index). Each run trains the demo architecture (resnet18, slim decoder) at ``--size`` px with one augmentation
setting: ``all_on`` (the defaults), ``none`` (no augmentation), ``study`` (rotation, flips, random resized
crop only: the study's set) and ``-NAME`` (the defaults without NAME). The validation galaxies are scored in
several styles:

- ``own``: as trained (g,r,z -> RGB, Legacy Survey convention);
- ``bgr``: the same images with the channel order reversed (another colour convention);
- ``grey``: the r band alone, stretched as a single-band image and fed as grey;
- ``--held-out STYLE`` (default ``galsim-gri``, the style the default survey mix leaves out): other galaxies
  (another seed, as many as the validation split) drawn in that survey style of ``evalcore.synthetic.styles``
  (GalSim image formation, its bands, pixel scales, seeing, depth and colour convention).

Per run and style: spiral IoU vs truth (mean over validation galaxies with a true spiral; model >= 0.5,
a fixed threshold so no style is tuned on) and bar recall / precision (bar score >= 0.5, truth: any true bar
pixel). Same galaxies and epochs for every run; ``--seeds 7,8,9`` repeats each run with those training seeds
(weights, augmentation draws and batch order; the galaxies stay the same) and prints the mean over the seeds
too, so a difference between runs can be set against the spread between seeds. The machine is shared, so times
are indicative.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from evalcore.pixels import colour  # noqa: E402
from evalcore.synthetic import renderer  # noqa: E402
from evalcore.synthetic.population import draw_galaxy  # noqa: E402
from evalcore.synthetic.survey import _conditions, cutout_wcs  # noqa: E402
from evalcore.unet.augment import PHOTOMETRIC, SWITCHES  # noqa: E402
from evalcore.unet.data import Sample  # noqa: E402
from evalcore.unet.infer import Predictor  # noqa: E402
from evalcore.unet.metrics import at_least, bar_score, iou  # noqa: E402
from evalcore.unet.model import demo_config  # noqa: E402
from evalcore.unet.train import train  # noqa: E402

SEED = 7
NEW = ("scale",) + PHOTOMETRIC


def render_galaxies(n: int, size: int, cache: Path | None) -> list[dict]:
    """n galaxies: g,r,z cube, true spiral and bar masks (bool). Cached as npz when ``cache`` is given."""
    if cache and cache.exists():
        d = np.load(cache)
        return [{"bands": d["bands"][i], "spiral": d["spiral"][i], "bar": d["bar"][i]} for i in range(len(d["bands"]))]
    field = size * colour.LEGACY_SURVEY_PIXEL_SCALE
    out = []
    for i in range(n):
        p = draw_galaxy(np.random.default_rng([SEED, i, 0]), seed=SEED, index=i, field_arcsec=field)
        rng = np.random.default_rng([SEED, i, 1])
        grid = renderer.Grid.from_wcs(cutout_wcs(p.ra, p.dec, size), (size, size), p.ra, p.dec)
        r = renderer.render(p, grid, _conditions(rng, "cutout"), rng)
        out.append({"bands": r.bands.astype(np.float32), "spiral": r.spiral > 0, "bar": r.bar > 0})
    if cache:
        np.savez_compressed(cache, bands=np.stack([g["bands"] for g in out]),
                            spiral=np.stack([g["spiral"] for g in out]), bar=np.stack([g["bar"] for g in out]))
    return out


def render_held_out(style_name: str, n: int, size: int) -> list[dict]:
    """n galaxies of a survey style (evalcore.synthetic.styles) as its survey cutout: RGB and truth."""
    from evalcore.synthetic import survey

    settings = survey.SurveySettings(n=n, seed=SEED + 1, size=size, out=Path("/nonexistent"), style=style_name)
    out = []
    for i in range(n):
        style, pixel_scale, p, style_rng = survey.galaxy_params(settings, i)
        noise_rng = np.random.default_rng([SEED + 1, i, 1])
        grid = renderer.Grid.from_wcs(cutout_wcs(p.ra, p.dec, size, pixel_scale), (size, size), p.ra, p.dec)
        cut, _ = survey._galsim_image(p, grid, style, style_rng, noise_rng, "cutout")
        bands = tuple(style.bands)
        rgb = (colour.gri_to_rgb(cut.bands) if bands == ("g", "r", "i") else
               colour.grz_to_rgb(cut.bands) if bands == ("g", "r", "z") else colour.mono_to_rgb(cut.bands[0]))
        out.append({"rgb": rgb, "spiral": cut.spiral > 0, "bar": cut.bar > 0})
    return out


def style_image(galaxy: dict, style: str, extra_styles: dict) -> np.ndarray:
    if "rgb" in galaxy:
        return galaxy["rgb"]
    if style == "own":
        return colour.grz_to_rgb(galaxy["bands"])
    if style == "bgr":
        return np.ascontiguousarray(colour.grz_to_rgb(galaxy["bands"])[..., ::-1])
    if style == "grey":
        return colour.mono_to_rgb(galaxy["bands"][1])
    return extra_styles[style](galaxy)


def run_config(name: str) -> dict:
    base = {s: True for s in SWITCHES}
    if name == "all_on":
        return base
    if name == "none":
        return {s: False for s in SWITCHES}
    if name == "study":
        return {s: s in ("rotate", "flip", "crop") for s in SWITCHES}
    if name.startswith("-") and name[1:] in SWITCHES:
        return {**base, name[1:]: False}
    if name.startswith("+") and name[1:] in SWITCHES:  # the study's set plus one
        return {s: s in ("rotate", "flip", "crop", name[1:]) for s in SWITCHES}
    raise SystemExit(f"unknown run {name!r}")


def score(predictor, galaxies, style, extra_styles) -> dict:
    images = [style_image(g, style, extra_styles) for g in galaxies]
    preds = predictor.predict(images)
    ious = [iou(at_least(p[0], 0.5), g["spiral"]) for p, g in zip(preds, galaxies) if g["spiral"].any()]
    has_bar = np.array([bool(g["bar"].any()) for g in galaxies])
    found = np.array([bar_score(p[1]) >= 0.5 for p in preds])
    tp, fp, fn = int((found & has_bar).sum()), int((found & ~has_bar).sum()), int((~found & has_bar).sum())
    return {"spiral_iou": float(np.mean(ious)) if ious else None, "n_spiral": len(ious),
            "bar_recall": tp / (tp + fn) if tp + fn else None, "bar_precision": tp / (tp + fp) if tp + fp else None,
            "n_bar": int(has_bar.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--render", type=int, default=128, help="rendered cutout side, px")
    ap.add_argument("--size", type=int, default=64, help="network input, px")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default="all_on,none,study," + ",".join(f"-{s}" for s in NEW))
    ap.add_argument("--held-out", default="galsim-gri", help="a survey style never trained on ('' = none)")
    ap.add_argument("--cache", default="/tmp/augment_ablation_survey.npz")
    ap.add_argument("--seeds", default=str(SEED), help="training seeds, comma-separated")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    extra = {}
    cache = Path(f"{args.cache[:-4]}_{args.n}_{args.render}.npz") if args.cache else None
    t0 = time.perf_counter()
    galaxies = render_galaxies(args.n, args.render, cache)
    print(f"{len(galaxies)} galaxies at {args.render} px in {time.perf_counter() - t0:.0f} s", flush=True)
    n_train = int(0.7 * len(galaxies))
    tr, va = galaxies[:n_train], galaxies[n_train:]

    def sample(g, k):
        return Sample(colour.grz_to_rgb(g["bands"]), spiral=g["spiral"].astype(np.float32),
                      bar=g["bar"].astype(np.float32), key=str(k))

    train_s = [sample(g, k) for k, g in enumerate(tr)]
    val_s = [sample(g, k) for k, g in enumerate(va)]
    styles = ["own", "bgr", "grey"]
    held = []
    if args.held_out:
        t1 = time.perf_counter()
        held = render_held_out(args.held_out, len(va), args.render)
        print(f"{len(held)} held-out galaxies in style {args.held_out} in {time.perf_counter() - t1:.0f} s", flush=True)
    results = {}
    for name in args.runs.split(","):
        switches = run_config(name)
        for seed in seeds:
            key = name if len(seeds) == 1 else f"{name} seed {seed}"
            cfg = demo_config(image_size=args.size, epochs=args.epochs, patience=args.epochs, seed=seed,
                              precision="fp32", **switches)
            t = time.perf_counter()
            result = train(cfg, train_s, val_s, log=lambda line: None)
            predictor = Predictor(result.model_bytes(), mode="fp32", threads=args.threads, batch_size=16)
            row = {"switches": switches, "seed": seed, "best_epoch": result.best_epoch,
                   "train_s": round(time.perf_counter() - t),
                   "styles": {s: score(predictor, va, s, extra) for s in styles}}
            if held:
                row["styles"][args.held_out] = score(predictor, held, args.held_out, extra)
            results[key] = row
            cells = "  ".join(f"{s}: IoU {r['spiral_iou']:.3f} bar R/P {r['bar_recall'] or 0:.2f}/"
                              f"{r['bar_precision'] or 0:.2f}" for s, r in row["styles"].items())
            print(f"{key:26} {row['train_s']:4d} s  {cells}", flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
        if len(seeds) > 1:
            rows = [results[f"{name} seed {seed}"] for seed in seeds]
            means = "  ".join(
                f"{s}: IoU {np.mean([r['styles'][s]['spiral_iou'] for r in rows]):.3f} "
                f"(seeds {min(r['styles'][s]['spiral_iou'] for r in rows):.3f}-"
                f"{max(r['styles'][s]['spiral_iou'] for r in rows):.3f})" for s in rows[0]["styles"])
            print(f"{name + ' mean':26}        {means}", flush=True)


if __name__ == "__main__":
    main()
