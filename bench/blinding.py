"""The machine blinding audit of every display on the demo survey: how well a classifier names a panel's source.

    nice -n 10 .venv/bin/python bench/blinding.py [--galaxies 200] [--size 256] [--train-seconds 540]
                                                  [--study-galaxies 60] [--redis-db 14]

Builds the demo survey in a throw-away environment the way ``./tasks.sh run`` does (``make_synthetic
--import``: images and the synthetic volunteers' GZ3D masks; the arc finder's masks; a demo U-Net trained
within the time budget, its masks, and its evaluation, which stores its marking thresholds), makes a study
with all three sources and both structures over the test-split galaxies (at most ``--study-galaxies``), and
audits the same masks drawn by each display (``ratings/services/blinding_audit.py`` over
``evalcore/study/blinding_audit.py``). Prints, per display,
the presentation audit's accuracy with its 95% interval and chance, the most leaking features, and the content audit.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-seconds", type=float, default=540)
    ap.add_argument("--study-galaxies", type=int, default=60)
    ap.add_argument("--redis-db", type=int, default=14)  # 13 is the test suite's
    args = ap.parse_args()

    from _django_env import make_survey, release_redis_db, setup_env

    tmp = Path(tempfile.mkdtemp(prefix="bench-blinding-"))
    setup_env(tmp, redis_db=args.redis_db)

    from evalcore import vocabulary
    from evalcore.sky.splits import split_for
    from evalsite.demo import DEMO_SELECTION, demo_training_config
    from ratings.models import Study
    from ratings.services import blinding_audit
    from ratings.services.studies import study_check, study_set_items
    from segmentation.models import Galaxy, Producer, RunStatus
    from segmentation.services import generation, training
    from segmentation.services.model_versions import evaluate_version

    make_survey(tmp, galaxies=args.galaxies, seed=args.seed, size=args.size)
    galaxies = Galaxy.objects.filter(synthetic=True)
    t0 = time.perf_counter()
    arcs_run = generation.generation_start(source="sparcfire", galaxies=galaxies, requested_by="bench")
    for chunk in arcs_run.chunks.order_by("index"):
        generation.chunk_process(chunk_id=chunk.pk)
    print(f"arc finder masks in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    run = training.training_start(config=demo_training_config(), selection=DEMO_SELECTION, requested_by="bench",
                                  time_budget_s=args.train_seconds)
    run = training.run_train(run_id=run.pk)
    if run.status != RunStatus.SUCCEEDED:
        raise SystemExit(f"training ended {run.status}: {run.error if hasattr(run, 'error') else ''}")
    version = run.modelversion_set.get()
    gen = generation.generation_start(source="model", galaxies=galaxies, model_version=version,
                                      requested_by="bench")
    for chunk in gen.chunks.order_by("index"):
        generation.chunk_process(chunk_id=chunk.pk)
    evaluate_version(version=version, n_boot=200)
    version.refresh_from_db()
    print(f"model trained, masks made and evaluated in {time.perf_counter() - t0:.0f} s", flush=True)

    volunteers = Producer.objects.filter(kind=vocabulary.VOLUNTEERS).first()
    arcs = Producer.objects.filter(kind=vocabulary.SPARCFIRE).first()
    chosen = [g for g in galaxies.order_by("pk") if split_for(g.ra, g.dec, name=g.name) == "test"]
    chosen = chosen[:args.study_galaxies]
    study = Study.objects.create(
        name="Blinding bench", structures=["spiral", "bar"], planned_items=2 * len(chosen), planned_raters=3,
        raters_per_item=1, practice_items=0, repeat_rate=0, attention_rate=0, seed=args.seed,
        primary_question="bench", stopping_rule="bench")
    study.sources.set([volunteers, version.producer, arcs])
    study_set_items(study=study, galaxies=chosen)
    check = study_check(study=study, with_audit=False)
    print(f"study: {len(chosen)} test-split galaxies, both structures; levels:")
    for line in blinding_audit.level_lines(check.levels, study.structures):
        print("  " + line)
    print(f"\nmachine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'display':<14} {'panels':>6} {'presentation accuracy (95% CI)':>32} {'chance':>7}  "
          f"{'content accuracy':>17}  most leaking")
    for display in blinding_audit.DISPLAYS:
        t0 = time.perf_counter()
        result = blinding_audit.run(study, display)
        p, c = result["presentation"], result["content"]
        leaks = ", ".join(f for f, _ in p.get("leaking", [])[:3]) if p["above_chance"] else "-"
        print(f"{display:<14} {result['panels']:>6} {100 * p['accuracy']:>13.1f}% "
              f"({100 * p['low']:.1f}-{100 * p['high']:.1f}%){'':>5} {100 * p['chance']:>6.1f}%  "
              f"{100 * c['accuracy']:>16.1f}%  {leaks}   [{time.perf_counter() - t0:.0f} s]", flush=True)
    release_redis_db(args.redis_db)


if __name__ == "__main__":
    main()
