"""The quality gate of model versions (services): evaluate a version, compare it with the floors of
``evalcore.unet.gate`` and the arc finder on the same test galaxies, keep the verdict in
``ModelVersion.metrics["gate"]``, and activate a version automatically only when it passed.

Activation by hand (admin action, ``training.model_version_activate``) refuses a version that has not
passed unless the person overrides the gate; the override is recorded with the version.
"""
from __future__ import annotations

import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from evalcore.unet import gate as floors
from evalcore.unet.manifest import NOT_ASKED
from evalsite.version import code_version
from segmentation.models import Mask, ModelVersion, Producer
from segmentation.selectors.model_versions import version_manifest
from segmentation.services import model_versions

log = logging.getLogger(__name__)


class GateNotPassed(ValueError):
    """Activating a version that has not passed the quality gate, without an override."""


def arc_finder_vs_truth(version: ModelVersion, split: str = "test") -> dict | None:
    """The arc finder's spiral IoU vs truth on the galaxies of ``split`` of the version's manifest that the
    model's IoU vs truth is computed on (spiral asked of the volunteers, a true spiral on the same image):
    ``{"mean", "n", "n_missing"}``; None when none of them has a truth (no truth: nothing to compare)."""
    from evalcore.unet.metrics import at_least, iou

    entries = [e for e in version_manifest(version)["galaxies"]
               if e["split"] == split and e["masks"].get("spiral", NOT_ASKED) != NOT_ASKED]
    found = model_versions.volunteer_masks_by_hash(entries)
    images = []
    for e in entries:
        image, _, _ = model_versions.manifest_labels(e, found)
        if image is not None:
            images.append(image.pk)
    truth = {m.image_id: m for m in Mask.objects.filter(image_id__in=images, structure="spiral", is_current=True,
                                                         producer__kind=Producer.Kind.TRUTH)}
    arcs = {m.image_id: m for m in Mask.objects.filter(image_id__in=list(truth), structure="spiral", is_current=True,
                                                        producer__kind=Producer.Kind.SPARCFIRE)}
    ious, missing = [], 0
    for image_id, t in truth.items():
        true = t.fractions() > 0
        if not true.any():
            continue
        arc = arcs.get(image_id)
        f = arc.fractions() if arc is not None else None
        if f is None:
            missing += 1
            continue
        ious.append(iou(at_least(f, 0.5), true))
    if not ious and not missing:
        return None
    return {"mean": float(np.mean(ious)) if ious else None, "n": len(ious), "n_missing": missing}


def gate_check(*, version: ModelVersion) -> dict:
    """Gate the version's stored test-split evaluation; the verdict is stored in ``metrics["gate"]``."""
    report = version.metrics.get(model_versions.evaluation_key("test"))
    arc = arc_finder_vs_truth(version) if report else None
    verdict = floors.check(report, arc)
    verdict.update({"arc_finder": arc, "evaluated_at": (report or {}).get("computed_at"),
                    "checked_at": timezone.now().isoformat(timespec="seconds"), "code_version": code_version()})
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(pk=version.pk)
        row.metrics = {**row.metrics, "gate": verdict}
        row.save(update_fields=["metrics"])
    version.metrics = row.metrics
    return verdict


def evaluate_and_gate(*, version: ModelVersion, n_boot: int = 1000, predictor=None) -> dict:
    """Evaluate the version on its test split (``model_versions.evaluate_version``), then gate it. An evaluation that
    cannot run (no manifest, no test galaxies here) is recorded as the gate's reason."""
    try:
        model_versions.evaluate_version(version=version, n_boot=n_boot, predictor=predictor)
    except ValueError as exc:
        verdict = floors.check(None)
        verdict["reasons"] = [f"could not be evaluated: {exc}"]
        verdict["checks"][0]["reason"] = verdict["reasons"][0]
        with transaction.atomic():
            row = ModelVersion.objects.select_for_update().get(pk=version.pk)
            row.metrics = {**row.metrics, "gate": verdict}
            row.save(update_fields=["metrics"])
        version.metrics = row.metrics
        return verdict
    return gate_check(version=version)


def gate_of(version: ModelVersion) -> dict | None:
    return (version.metrics or {}).get("gate")


def passed(version: ModelVersion, structures=None) -> bool:
    """Whether the version passed the quality gate; with ``structures``, the checks of those structures only
    (e.g. ``("spiral",)`` for a study of spiral arms)."""
    if structures is not None:
        return floors.passed_for(gate_of(version), structures)
    return bool((gate_of(version) or {}).get("passed"))


def summary(version: ModelVersion) -> str:
    """One line: passed, or why not (admin list and page, generate_masks, the demo)."""
    override = (version.metrics or {}).get("gate_override")
    line = floors.summary(gate_of(version))
    if override and not passed(version):
        line += f" (made active anyway by {override.get('by') or 'someone'} at {override.get('at')})"
    return line


def activate_if_passed(*, version: ModelVersion) -> bool:
    """Make the version active automatically when it passed the gate and no version is active yet
    (a new version never silently replaces one that serves). Returns whether it is active now."""
    from segmentation.services import training

    version.refresh_from_db()
    if version.is_active:
        return True
    if not passed(version) or ModelVersion.objects.filter(is_active=True).exists():
        return False
    training.model_version_activate(version=version)
    return True
