"""The arc finder's own galaxy-level pitch angle and chirality against a synthetic survey's truth.

    DATABASE_URL=... MEDIA_ROOT=... .venv/bin/python bench/arcfinder_survey.py [--split test] [--min-arm-contrast 1.6]

Reads the current arc-finder spiral masks of the database the environment points at (a benchmark survey
imported with ``make_synthetic --import``, masks made with ``generate_masks --source sparcfire``) and
compares the values the arc finder itself wrote into each mask's details - ``pitch_angle_deg`` (arc-length
weighted, deprojected with its fitted ellipse) and ``chirality`` - with ``Galaxy.truth``. This is
SpArcFiRe's own answer; ``compare_measurements --truth`` measures pitch from the masks of every source with
one method instead (docs/measurements.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--min-arm-contrast", type=float, default=None)
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from evalcore.measure.agreement import agreement_report, pair_with_truth
    from segmentation.models import Galaxy, Mask
    from segmentation.selectors.galaxies import galaxy_ids_in_split

    ids = galaxy_ids_in_split(args.split, Galaxy.objects.filter(synthetic=True))
    masks = (Mask.objects.filter(producer__kind="sparcfire", structure="spiral", is_current=True,
                                 image__kind="survey_cutout", galaxy_id__in=ids).select_related("galaxy"))
    values, truth = {}, {}
    n_chirality = n_right = n_no_verdict = 0
    for m in masks:
        t = m.galaxy.truth or {}
        if t.get("pitch_angle_deg") is None:
            continue
        if args.min_arm_contrast is not None and (t.get("arm_contrast") or 0.0) < args.min_arm_contrast:
            continue
        d = m.details or {}
        truth[m.galaxy.name] = t["pitch_angle_deg"]
        p = d.get("pitch_angle_deg")
        values[m.galaxy.name] = (abs(p), None, None) if p is not None else (None, None, "no arcs")
        if d.get("chirality") in ("S", "Z") and t.get("chirality"):
            n_chirality += 1
            n_right += d["chirality"] == t["chirality"]
        else:
            n_no_verdict += 1
    if not truth:
        raise SystemExit(f"no arc-finder spiral masks of synthetic {args.split} galaxies with a true pitch here")
    r = agreement_report(pair_with_truth(values, truth), quantity="|pitch| vs truth", unit="deg",
                         source="arc finder (own pitch)")
    cut = f", true arm contrast >= {args.min_arm_contrast:g}" if args.min_arm_contrast is not None else ""
    print(f"{args.split} split{cut}: {len(truth)} galaxies with a true spiral, {r.n} with a pitch")
    print(f"  |pitch| - true pitch: bias {r.bias:+.2f} deg, scatter {r.scatter:.2f}, median |d| "
          f"{r.median_abs_error:.2f}, mean |d| {r.mean_abs_error:.2f}, Pearson r {r.pearson_r:.3f}")
    print(f"  chirality right: {n_right} of {n_chirality} ({n_no_verdict} without a verdict)")


if __name__ == "__main__":
    main()
