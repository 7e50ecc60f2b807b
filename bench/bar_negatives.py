"""Can the bar channel tell barred from unbarred galaxies? Learning with and without the galaxies whose bar
task was never asked counted as "nobody would mark a bar".

    nice -n 5 .venv/bin/python bench/bar_negatives.py [--galaxies 200] [--size 256] [--epochs 30]
                                                      [--variants asked_only,not_asked_empty] [--redis-db 15]

In Galaxy Zoo: 3D (and the synthetic survey that imitates it) volunteers are asked to draw a bar only where
earlier volunteers called the galaxy barred, so nearly every galaxy with a bar drawing is barred. Learning
the bar channel from those galaxies alone teaches it where volunteers draw a bar *given that they were asked*,
and it draws one on every galaxy. This bench builds the demo survey in a throw-away environment
(``make_synthetic --import``), reads its training samples through the training service (``labelled_galaxies``)
and trains the demo network (``demo_config``) twice on the same galaxies and seed:

- ``asked_only``: bar maps only where the bar task was asked (the study's rule and today's default);
- ``not_asked_empty``: a galaxy whose spiral task was asked but not its bar task counts as an empty bar map.

Each variant is scored on the validation and test splits against the survey's truth: the area under the ROC
curve of the galaxy's bar score (``metrics.bar_score``) for "has a bar", bar recall and precision at the
threshold chosen on validation by Youden's J, bar IoU on the barred galaxies, and spiral IoU vs truth (so that
the change costs nothing elsewhere).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("asked_only", "not_asked_empty")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--redis-db", type=int, default=15)
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}: one of {', '.join(VARIANTS)}")

    from _django_env import make_survey, release_redis_db, setup_env

    tmp = Path(tempfile.mkdtemp(prefix="bench-bar-negatives-"))
    try:
        setup_env(tmp, redis_db=args.redis_db)
        make_survey(tmp, galaxies=args.galaxies, seed=args.seed, size=args.size)
        compare(args, variants)
    finally:
        release_redis_db(args.redis_db)
        shutil.rmtree(tmp, ignore_errors=True)


def compare(args, variants: list[str]) -> None:
    """Train the demo network once per variant on the survey just imported and print its scores."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from evalcore.unet.data import Sample
    from evalcore.unet.infer import Predictor
    from evalcore.unet.metrics import at_least, bar_score, detection, detection_threshold, iou
    from evalcore.unet.model import demo_config
    from evalcore.unet.train import train
    from evalsite.demo import DEMO_SELECTION
    from segmentation.models import Image, Mask
    from segmentation.selectors.images import image_rgb
    from segmentation.services import training

    truth = training.truth_producer()
    items = training.labelled_galaxies(selection=DEMO_SELECTION)
    data = {}
    for item in items:
        image = image_rgb(Image.objects.get(pk=item.image_id))
        true = {m.structure: m.fractions() > 0 for m in Mask.objects.filter(
            galaxy_id=item.galaxy_id, producer=truth, image_id=item.image_id, is_current=True)}
        crowd = {s: (m.fractions() if m is not None else None) for s, m in item.masks.items()}
        data[item.name] = {"split": item.split, "image": image, "crowd": crowd, "truth": true}
    by_split = {s: [k for k, d in data.items() if d["split"] == s] for s in ("train", "val", "test")}
    barred = {s: sum(bool(data[k]["truth"]["bar"].any()) for k in ks) for s, ks in by_split.items()}
    asked = {s: sum(data[k]["crowd"]["bar"] is not None for k in ks) for s, ks in by_split.items()}
    print("galaxies (barred, bar task asked): " + ", ".join(
        f"{s} {len(ks)} ({barred[s]}, {asked[s]})" for s, ks in by_split.items()), flush=True)

    def samples(keys, variant):
        out = []
        for k in keys:
            crowd = data[k]["crowd"]
            bar = crowd["bar"]
            if bar is None and crowd["spiral"] is not None and variant == "not_asked_empty":
                bar = np.zeros_like(crowd["spiral"])
            out.append(Sample(image=data[k]["image"], spiral=crowd["spiral"], bar=bar, key=k))
        return out

    print(f"{'variant':16} {'split':5} {'bar ROC area':>12} {'recall':>7} {'precision':>9} {'bar IoU':>8} "
          f"{'spiral IoU @0.5':>15}   [training]", flush=True)
    for variant in variants:
        config = demo_config(epochs=args.epochs, patience=args.epochs, seed=args.seed)
        t = time.perf_counter()
        result = train(config, samples(by_split["train"], variant), samples(by_split["val"], variant),
                       threads=args.threads, log=lambda line: None)
        seconds = time.perf_counter() - t
        predictor = Predictor(result.model_bytes(), mode="fp32", threads=args.threads)
        scores = {}
        for split in ("val", "test"):
            keys = by_split[split]
            preds = predictor.predict([data[k]["image"] for k in keys])
            scores[split] = [(bar_score(p[1]), bool(data[k]["truth"]["bar"].any()), p, k)
                             for p, k in zip(preds, keys)]
        threshold = detection_threshold([s for s, *_ in scores["val"]], [y for _, y, *_ in scores["val"]])
        for split in ("val", "test"):
            rows = scores[split]
            s, y = [r[0] for r in rows], [r[1] for r in rows]
            d = detection(s, y, threshold)
            bar_iou = np.mean([iou(at_least(p[1], 0.5), data[k]["truth"]["bar"]) for _, yy, p, k in rows if yy])
            spiral = [iou(at_least(p[0], 0.5), data[k]["truth"]["spiral"]) for _, _, p, k in rows
                      if data[k]["truth"]["spiral"].any()]
            print(f"{variant:16} {split:5} {roc_auc_score(y, s):12.2f} {d['recall'] or 0:7.2f} "
                  f"{d['precision'] or 0:9.2f} {bar_iou:8.3f} {np.mean(spiral):15.3f}   "
                  f"[{seconds:.0f} s, best epoch {result.best_epoch}, threshold {threshold:.2f}]", flush=True)


if __name__ == "__main__":
    main()
