"""Speed of reading a 100,000-answer study out of the database for the dashboard (a throwaway test
database, never the site's): ``exports.answers_frame`` (the first view after a change and the raw CSV),
``results.data_fingerprint`` and ``results.progress`` (every view), against a baseline in the same
process: fetching the answers in the same order as bare tuples (``values_list``, timestamps included)
with no per-row work.

    .venv/bin/python bench/bench_dashboard_db.py [--galaxies 4200] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ratings.services.studies import rater_join, study_open
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")


def build(n_galaxies: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from ratings.models import Answer, Assignment, Candidate, Item, Study
    from segmentation.models import Galaxy

    producers = [producer_get_or_create(kind=k, name=k, version="1") for k in ("volunteers", "model", "sparcfire")]
    g0, _ = galaxy_upsert(name="g0", defaults={"ra": 1.0, "dec": 2.0})
    im, _ = image_store(galaxy=g0, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
    masks = []
    for j, p in enumerate(producers):
        counts = np.zeros((8, 8), np.int64)
        counts[j:j + 3, 1:4] = 1
        masks.append(mask_store(galaxy=g0, image=im, structure="spiral", producer=p, state="marked",
                                numerators=counts, denominator=1))
    masks = [getattr(m, "mask", m) for m in masks]
    Galaxy.objects.bulk_create([Galaxy(name=f"g{i}", ra=i * 0.01, dec=1.0) for i in range(1, n_galaxies)])
    # one attention check per rater: study_open draws them from a pool of five with replacement, and the
    # same check twice in one rater's sequence breaks the one-assignment-per-slot-and-item constraint
    study = Study.objects.create(name="bench", structures=["spiral"], primary_question="q", planned_items=n_galaxies,
                                 planned_raters=50, raters_per_item=8, stopping_rule="all", seed=1,
                                 repeat_rate=0.05, attention_rate=0.001)
    study.sources.set(producers)
    items = Item.objects.bulk_create([Item(study=study, galaxy=g, structure="spiral") for g in Galaxy.objects.all()])
    Candidate.objects.bulk_create([Candidate(item=it, mask=m, producer=p) for it in items
                                   for m, p in zip(masks, producers)])
    study_open(study=study)
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"u{i}") for i in range(50)])
    for u in users:
        rater_join(study=study, user=u)
    rng = random.Random(0)
    answers, now = [], timezone.now()
    assignments = list(Assignment.objects.filter(study=study))
    for a in assignments:
        q = [rng.randint(0, 3) for _ in a.panel_order]
        for pos, cid in enumerate(a.panel_order):
            answers.append(Answer(assignment=a, candidate_id=cid, panel_position=pos,
                                  rank=1 + sum(o > q[pos] for o in q), tied=q.count(q[pos]) > 1, quality=q[pos]))
        a.submitted_at, a.seconds_spent = now, rng.uniform(5, 60)
    Answer.objects.bulk_create(answers, batch_size=5000)
    Assignment.objects.bulk_update(assignments, ["submitted_at", "seconds_spent"], batch_size=5000)
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=4200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    from ratings.models import Answer
    from ratings.services import exports, results

    setup_test_environment()
    with tempfile.TemporaryDirectory() as media, override_settings(MEDIA_ROOT=media):
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            t = time.perf_counter()
            study = build(args.galaxies)
            n = Answer.objects.filter(assignment__study=study).count()
            print(f"built {n} answers in {time.perf_counter() - t:.0f} s ({settings.DATABASES['default']['ENGINE']})")
            timings = {"answers_frame": [], "baseline values_list": [], "fingerprint": [], "progress": []}
            for _ in tqdm(range(args.runs), desc="runs"):
                for name, call in (
                    ("answers_frame", lambda: exports.answers_frame(study)),
                    ("baseline values_list", lambda: list(Answer.objects.filter(assignment__study=study).order_by(
                        "assignment__rater__pseudonym", "assignment__position", "panel_position").values_list(
                        "assignment__rater__pseudonym", "assignment__item_id", "candidate__producer__kind",
                        "panel_position", "rank", "tied", "quality", "assignment__seconds_spent", "created_at",
                        "updated_at"))),
                    ("fingerprint", lambda: results.data_fingerprint(study)),
                    ("progress", lambda: results.progress(study)),
                ):
                    t = time.perf_counter()
                    call()
                    timings[name].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in timings.items()}
            for k, v in med.items():
                print(f"{k}: median {v:.3f} s over {args.runs} runs")
            print(f"ratio answers_frame / baseline: {med['answers_frame'] / med['baseline values_list']:.1f}x")
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
