"""A small model trained on some survey styles, scored on those styles and on a style it never saw.

    nice -n 10 .venv/bin/python bench/style_holdout.py [--train-style mix] [--held-out galsim-gri] [--n 240]
        [--n-held 60] [--size 256] [--epochs 6] [--image-size 128] [--threads 2] [--limit 60] [--redis-db 12]
    nice -n 10 .venv/bin/python bench/style_holdout.py --demo   # the shipped default model

``--demo`` trains the shipped default model instead: the demo's survey (``evalsite.demo``: its galaxy count,
seed and image size, the default style mix) and the demo's training options (``demo_config``: epochs, patience,
batch size, image size); ``--n``, ``--seed``, ``--size``, ``--epochs`` and ``--image-size`` are then ignored.

In a throw-away database (bench/_django_env.py): a survey of ``--n`` galaxies in ``--train-style`` is made
and imported (make_synthetic --import), a U-Net is trained on it (the demo's configuration,
``unet.model.demo_config``, with ``--epochs`` and ``--image-size``), then a survey of ``--n-held``
galaxies in the held-out style (another seed) is imported and ``evaluate_model --style`` scores the
version: IoU against the truth on its own test split and on the held-out style, for the model, the
volunteers' consensus and the arc finder on the same galaxies, and bar detection (docs/model-quality.md).
The model is small and short-trained: the figures compare styles for one training, they are not the
shipped model's quality.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from evalcore.synthetic import styles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-style", default=styles.DEFAULT_STYLE)
    ap.add_argument("--held-out", default=styles.HELD_OUT_STYLE)
    ap.add_argument("--n", type=int, default=240, help="training survey galaxies (70/10/20 by sky cell)")
    ap.add_argument("--n-held", type=int, default=60)
    ap.add_argument("--size", type=int, default=256, help="survey image size, px")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=60, help="at most this many galaxies per evaluated group")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--redis-db", type=int, default=12,
                    help="a Redis database of your own, not the one the tests use while they run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (database, surveys)")
    ap.add_argument("--demo", action="store_true", help="the shipped default model: the demo's survey and training")
    args = ap.parse_args()
    if args.held_out in styles.parse(args.train_style):
        raise SystemExit(f"--held-out {args.held_out} is one of the training styles {args.train_style}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-style-holdout-"))
    from _django_env import release_redis_db, setup_env

    setup_env(tmp, redis_db=args.redis_db)
    from evalcore.unet.model import demo_config
    from evalsite import demo

    if args.demo:
        args.n, args.seed, args.size = demo.DEMO_GALAXIES, demo.DEMO_SEED, demo.DEMO_SIZE
        args.train_style = styles.DEFAULT_STYLE
        args.image_size = demo_config().image_size
    from django.core.management import call_command

    from segmentation.models import Galaxy, ModelVersion
    from segmentation.services import generation, style_evaluation, training

    quiet = io.StringIO()
    try:
        t0 = time.perf_counter()
        call_command("make_synthetic", n=args.n, seed=args.seed, size=args.size, out=str(tmp / "train"),
                     style=args.train_style, import_=True, no_progress=True, workers=min(2, os.cpu_count() or 1),
                     stdout=quiet)
        t1 = time.perf_counter()
        if args.demo:
            # as the demo does: the arc finder's masks (the gate compares with them), then training rounds until
            # a version passes the quality gate
            arcs = generation.generation_start(source="sparcfire", galaxies=Galaxy.objects.filter(synthetic=True),
                                               requested_by="bench")
            for chunk in arcs.chunks.order_by("index"):
                generation.chunk_process(chunk_id=chunk.pk)
            run = training.training_start(config=demo.demo_training_config(), selection=demo.DEMO_SELECTION,
                                          requested_by="bench")
            version, verdict = demo.train_until_gated(run.pk, wait_seconds=0)
            print(f"demo training: {verdict}")
            if version is None:
                version = ModelVersion.objects.order_by("-created_at").first()
            run = version.training_run
        else:
            config = {**demo_config().to_dict(), "epochs": args.epochs, "image_size": args.image_size,
                      "patience": args.epochs}
            run = training.training_start(config=config, selection=demo.DEMO_SELECTION, requested_by="bench")
            run = training.run_train(run_id=run.pk, threads=args.threads)
            version = ModelVersion.objects.get(training_run=run)
        t2 = time.perf_counter()
        call_command("make_synthetic", n=args.n_held, seed=args.seed + 1, size=args.size, out=str(tmp / "held"),
                     style=args.held_out, import_=True, no_progress=True, workers=min(2, os.cpu_count() or 1),
                     stdout=quiet)
        t3 = time.perf_counter()
        report = style_evaluation.style_evaluation(version=version, style=args.held_out, n_boot=args.n_boot,
                                                limit=args.limit)
        t4 = time.perf_counter()
        epochs = len(run.history or [])
        if args.keep:
            print(f"the trained version: {version.name}, weights in {tmp}")
        print(f"train survey {args.n} x {args.train_style} ({t1 - t0:.0f} s), training {run.total_epochs or epochs} "
              f"epochs at {args.image_size} px ({t2 - t1:.0f} s), held-out survey {args.n_held} x {args.held_out} "
              f"({t3 - t2:.0f} s), evaluation ({t4 - t3:.0f} s); load average {os.getloadavg()[0]:.1f}")
        for line in style_evaluation.summary_lines(report):
            print(line)
    finally:
        release_redis_db(args.redis_db)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


if __name__ == "__main__":
    main()
