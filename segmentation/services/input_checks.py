"""Input checks of model generation runs: each image against the model version's training data.

The training data are the images of the version's training split, as its manifest records them
(``evalcore.unet.input_checks`` compares bands, pixel scale, size and aspect ratio). A run keeps the
profile, how many images differ in each way and, for the first images that differ, what differs
(``GenerationRun.input_checks``); the admin page and ``generate_masks`` show them. Nothing is refused.
"""
from __future__ import annotations

import json

from evalcore.unet.input_checks import KINDS, ImageFacts, TrainingProfile, differences
from segmentation.models import Image, ModelVersion

MAX_LISTED = 500  # images listed with their differences; the counts cover all


def facts(image: Image) -> ImageFacts:
    return ImageFacts(width=image.width, height=image.height, pixel_scale=image.pixel_scale, bands=image.bands)


def training_profile(version: ModelVersion) -> TrainingProfile:
    """The version's training images (its manifest's "train" split; all its galaxies when none is marked so)
    summarised. Images deleted since are left out."""
    if not version.manifest:
        return TrainingProfile(n_images=0)
    with version.manifest.open("rb") as fh:
        galaxies = json.loads(fh.read()).get("galaxies", [])
    ids = [g["image_id"] for g in galaxies if g.get("split") == "train"] or [g["image_id"] for g in galaxies]
    rows = Image.objects.filter(pk__in=ids).only("width", "height", "pixel_scale", "bands")
    return TrainingProfile.from_facts([facts(im) for im in rows])


def check_images(*, version: ModelVersion, images) -> dict:
    """What sets each of ``images`` (Image rows) apart from ``version``'s training data: a JSON-able dict
    with ``profile``, ``checked``, ``differing``, ``counts`` (per kind) and ``images`` (the first MAX_LISTED
    that differ: galaxy, image id, size and the differences in words)."""
    profile = training_profile(version)
    counts = dict.fromkeys(KINDS, 0)
    listed, checked, differing = [], 0, 0
    for image in images:
        checked += 1
        found = differences(facts(image), profile)
        if not found:
            continue
        differing += 1
        for kind, _ in found:
            counts[kind] += 1
        if len(listed) < MAX_LISTED:
            listed.append({"galaxy": image.galaxy.name, "image_id": image.pk,
                           "differences": [text for _, text in found]})
    return {"model_version": version.name, "profile": profile.to_dict(), "training": profile.summary(),
            "checked": checked, "differing": differing, "counts": {k: v for k, v in counts.items() if v},
            "images": listed}


def summary_lines(checks: dict, limit: int = 10) -> list[str]:
    """Warnings for the command line: one line per kind, then the first ``limit`` images."""
    if not checks or not checks.get("differing"):
        return []
    out = [f"WARNING: {checks['differing']} of {checks['checked']} images differ from what "
           f"{checks['model_version']} learned from ({checks['training']}):"]
    out += [f"  {kind}: {n} image{'' if n == 1 else 's'}" for kind, n in checks["counts"].items()]
    for entry in checks["images"][:limit]:
        out.append(f"  {entry['galaxy']}: " + "; ".join(entry["differences"]))
    if checks["differing"] > limit:
        out.append(f"  ... {checks['differing'] - limit} more (the generation run's admin page lists up to "
                   f"{MAX_LISTED})")
    return out
