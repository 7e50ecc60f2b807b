"""Measurements stored per mask (bar length, spiral pitch): the Django layer over ``evalcore.measure``.

``measure_mask`` measures one mask with the inputs the database holds (the image's pixel scale, the
galaxy's redshift and disk orientation, the cosmology of ``settings.EVALSITE_COSMOLOGY``) and stores the
result's ``to_dict()`` in a ``MaskMeasurement`` with the headline numbers copied to indexed columns.
It is idempotent: a mask already measured by this code version with the same inputs is left alone; new
inputs (a redshift imported later, another cosmology) update the stored row in place.

When the galaxy has no catalogue axis ratio / position angle, the disk orientation is fitted to the image
(``evalcore.measure.disk.disk_orientation``) and the result says so (``disk_orientation_source``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction

from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalcore.measure.bar import measure_bar
from evalcore.measure.cosmology import CosmologyParams
from evalcore.measure.spiral import measure_spiral
from segmentation.models import (
    Galaxy,
    Image,
    Mask,
    MaskMeasurement,
)
from segmentation.selectors.measurements import masks_selection

DISK_FROM_GALAXY = "galaxy"  # the Galaxy's axis_ratio / position_angle (from a catalogue)


DISK_FROM_IMAGE = "image"  # fitted to the image's light


DISK_NONE = "none"


def settings_cosmology() -> CosmologyParams:
    """The site's cosmology (``settings.EVALSITE_COSMOLOGY``: H0 in km/s/Mpc, Om0)."""
    conf = getattr(settings, "EVALSITE_COSMOLOGY", None) or {}
    defaults = CosmologyParams()
    return CosmologyParams(H0=float(conf.get("H0", defaults.H0)), Om0=float(conf.get("Om0", defaults.Om0)))


# --- inputs -----------------------------------------------------------------------------------------
@dataclass
class DiskInput:
    axis_ratio: float | None  # b/a
    position_angle: float | None  # deg east of north
    source: str  # DISK_FROM_GALAXY | DISK_FROM_IMAGE | DISK_NONE
    note: str | None = None


def _galaxy_disk_ok(galaxy: Galaxy) -> bool:
    ba, pa = galaxy.axis_ratio, galaxy.position_angle
    return (ba is not None and pa is not None and math.isfinite(ba) and math.isfinite(pa) and 0 < ba <= 1)


def disk_for(galaxy: Galaxy, image: Image) -> DiskInput:
    """The disk orientation used to deproject: the galaxy's own fields, else a fit to the image."""
    if _galaxy_disk_ok(galaxy):
        return DiskInput(galaxy.axis_ratio, galaxy.position_angle % 180.0, DISK_FROM_GALAXY)
    from evalcore.measure.disk import disk_orientation
    from segmentation.selectors.images import image_rgb

    try:
        fit = disk_orientation(image_rgb(image))
    except ValueError as exc:
        return DiskInput(None, None, DISK_NONE, f"no disk orientation: none in the catalogue, and the image "
                                                f"fit failed ({exc})")
    return DiskInput(fit.axis_ratio, fit.position_angle, DISK_FROM_IMAGE,
                     f"disk orientation fitted to the image (b/a {fit.axis_ratio:.2f}, PA "
                     f"{fit.position_angle:.1f} deg): no catalogue value")


def _inputs(mask: Mask, cosmology: CosmologyParams) -> dict:
    """What a stored result depends on besides the mask's pixels; a change means re-measuring."""
    galaxy, image = mask.galaxy, mask.image
    disk = ({"axis_ratio": galaxy.axis_ratio, "position_angle": galaxy.position_angle}
            if _galaxy_disk_ok(galaxy) else {"from_image": image.content_hash})
    out = {"mask": mask.content_hash, "disk": disk}
    if mask.structure == "bar":
        out.update(pixel_scale=image.pixel_scale, redshift=galaxy.redshift, cosmology=cosmology.to_dict())
    return out


# --- measuring ----------------------------------------------------------------------------------------
def _nothing_marked(mask: Mask, peak: float) -> str:
    """Why an EMPTY mask that kept its source's faint fractions has no measurement."""
    threshold = (mask.details or {}).get("marked_threshold")
    below = f", below its source's threshold {threshold:.2g}" if isinstance(threshold, (int, float)) else ""
    return f"asked, nothing marked: the {mask.structure} map peaks at {peak:.2g}{below}"


def _run(mask: Mask, cosmology: CosmologyParams, disk: DiskInput) -> dict:
    fractions = mask.fractions()
    kept = mask.state == Mask.State.EMPTY and bool(fractions.any())
    if kept:  # below its source's threshold: nothing to measure, whatever faint fractions it keeps
        peak, fractions = float(fractions.max()), np.zeros_like(fractions)
    if mask.structure == "bar":
        result = measure_bar(fractions, pixel_scale=mask.image.pixel_scale, redshift=mask.galaxy.redshift,
                             disk_axis_ratio=disk.axis_ratio, disk_position_angle=disk.position_angle,
                             cosmology=cosmology)
    else:
        result = measure_spiral(fractions, disk_axis_ratio=disk.axis_ratio,
                                disk_position_angle=disk.position_angle)
    data = result.to_dict()
    if kept:
        data["reason"] = _nothing_marked(mask, peak)
        if "profile_reason" in data:
            data["profile_reason"] = data["reason"]
    data["disk_orientation_source"] = disk.source
    if disk.note:
        data["notes"] = [*data.get("notes", []), disk.note]
    return data


def _measure(mask: Mask, cosmology: CosmologyParams, disk_cache: dict | None = None
             ) -> tuple[MaskMeasurement | None, str]:
    if mask.state == Mask.State.NOT_ASKED:
        return None, "skipped"
    inputs = _inputs(mask, cosmology)
    existing = MaskMeasurement.objects.filter(mask=mask, kind=mask.structure,
                                              code_version=MEASUREMENT_CODE_VERSION).first()
    if existing is not None and existing.result.get("inputs") == inputs:
        return existing, "unchanged"
    cache = disk_cache if disk_cache is not None else {}
    key = (mask.galaxy_id, mask.image_id, mask.galaxy.axis_ratio, mask.galaxy.position_angle)
    if key not in cache:
        cache.clear()  # masks come ordered by image: one entry is enough
        cache[key] = disk_for(mask.galaxy, mask.image)
    data = _run(mask, cosmology, cache[key])
    data["inputs"] = inputs
    values = {
        "measured": bool(data.get("measured")),
        "result": data,
        "length_kpc": data.get("length_kpc"),
        "deprojected_length_kpc": data.get("deprojected_length_kpc"),
        "pitch_abs": data.get("pitch_abs"),
    }
    with transaction.atomic():
        obj, created = MaskMeasurement.objects.update_or_create(
            mask=mask, kind=mask.structure, code_version=MEASUREMENT_CODE_VERSION, defaults=values)
    return obj, ("created" if created else "updated")


def measure_mask(*, mask: Mask, cosmology: CosmologyParams | None = None) -> MaskMeasurement | None:
    """Measure one mask (bar masks -> bar, spiral masks -> spiral) and store the result.

    Not-asked masks give None. Lengths in px, arcsec and kpc (kpc needs the galaxy's redshift and the
    image's pixel scale, arcsec/px); pitch angles in deg. Raises ``ValueError`` for unusable input.
    """
    return _measure(mask, cosmology or settings_cosmology())[0]


@dataclass
class MeasureSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # not asked
    measured: int = 0  # of the masks measured now or before: a value came out
    not_measured: int = 0  # a reason instead of a value (stored too)
    failures: list[dict] = field(default_factory=list)  # {"mask", "galaxy", "structure", "reason"}

    def lines(self) -> list[str]:
        out = [f"masks: created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
               f"skipped {self.skipped} (not asked), failed {len(self.failures)}",
               f"results: {self.measured} with a value, {self.not_measured} without (reasons stored)"]
        out += [f"failed mask {f['mask']} ({f['galaxy']} {f['structure']}): {f['reason']}" for f in self.failures]
        return out


def measure_selection(*, masks=None, source: str | None = None, structure: str | None = None,
                      synthetic: str = "any", names: Iterable[str] | None = None, split: str | None = None,
                      cosmology: CosmologyParams | None = None,
                      progress: Callable[[int], None] | None = None) -> MeasureSummary:
    """Measure many masks (``masks`` queryset, else ``masks_selection(...)``); one failure does not stop the
    others. ``progress`` is called with 1 after each mask (e.g. a tqdm bar's ``update``)."""
    cosmology = cosmology or settings_cosmology()
    qs = masks if masks is not None else masks_selection(source=source, structure=structure,
                                                          synthetic=synthetic, names=names, split=split)
    qs = qs.select_related("galaxy", "image", "producer").order_by("image_id", "structure", "id")
    summary = MeasureSummary()
    cache: dict = {}
    # Ids first, then 200 masks at a time read in full: no read cursor stays open while results are written.
    # (On SQLite an open cursor pins a snapshot; once another process - a worker, a training run - commits,
    # this connection can no longer write and fails with "database is locked".)
    ids = list(qs.values_list("pk", flat=True))
    for start in range(0, len(ids), 200):
        batch = {m.pk: m for m in qs.filter(pk__in=ids[start:start + 200])}
        for pk in ids[start:start + 200]:
            mask = batch.get(pk)
            if mask is None:  # deleted meanwhile
                continue
            _measure_one(mask, cosmology, cache, summary)
            if progress:
                progress(1)
    return summary


def _measure_one(mask: Mask, cosmology: CosmologyParams, cache: dict, summary: MeasureSummary) -> None:
    """Measure one mask and count it in ``summary``; a bad mask is recorded as a failure, not raised."""
    try:
        obj, status = _measure(mask, cosmology, cache)
    except (ValueError, OSError) as exc:
        summary.failures.append({"mask": mask.pk, "galaxy": mask.galaxy.name, "structure": mask.structure,
                                 "reason": str(exc)})
        return
    setattr(summary, status, getattr(summary, status) + 1)
    if obj is not None:
        if obj.measured:
            summary.measured += 1
        else:
            summary.not_measured += 1
