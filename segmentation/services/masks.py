"""Producers, masks and volunteer classifications. Masks are immutable; one mask is current per
(galaxy, structure, producer); re-imports of the same content change nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from evalcore.formats import maskcodec, pngcodec
from segmentation.models import Galaxy, Image, ImportBatch, Mask, Producer, VolunteerClassification
from segmentation.services.files import store_by_content


# --- producers --------------------------------------------------------------------------------------
def parameters_hash(parameters: dict) -> str:
    return hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode()).hexdigest()


def producer_get_or_create(*, kind: str, name: str, version: str, parameters: dict | None = None,
                           code_version: str = "", description: str = "") -> Producer:
    parameters = parameters or {}
    producer, _ = Producer.objects.get_or_create(
        kind=kind, name=name, version=version, parameters_hash=parameters_hash(parameters),
        defaults={"parameters": parameters, "code_version": code_version, "description": description},
    )
    return producer


# --- masks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskResult:
    mask: Mask
    status: str  # "created" | "replaced" | "unchanged"


NOT_ASKED_HASH = "not-asked"


@dataclass(frozen=True)
class MaskInput:
    """One mask to store (the arguments of ``mask_store``)."""

    galaxy: Galaxy
    image: Image
    structure: str
    producer: Producer
    state: str
    numerators: np.ndarray | None = None
    denominator: int = 1
    n_volunteers: int | None = None
    details: dict | None = None
    batch: ImportBatch | None = None


def _mask_content(item: MaskInput) -> tuple[str, maskcodec.EncodedMask | None, str]:
    """Check a mask's pixels against its state and image, encode them: (state, encoded or None, hash)."""
    state, numerators, image = item.state, item.numerators, item.image
    if state == Mask.State.NOT_ASKED:
        if numerators is not None:
            raise ValueError("a not-asked mask has no pixels")
        return state, None, NOT_ASKED_HASH
    if numerators is None:
        raise ValueError(f"a mask in state {state!r} needs numerators")
    if numerators.shape != (image.height, image.width):
        raise ValueError(f"mask shape {numerators.shape} does not match image {image.height}x{image.width}")
    encoded = maskcodec.encode(numerators, item.denominator)
    has_pixels = bool(np.any(numerators))
    if state == Mask.State.EMPTY and has_pixels:
        # a source that found nothing may keep what it saw below its own threshold
        threshold = (item.details or {}).get("marked_threshold")
        if not isinstance(threshold, (int, float)):
            raise ValueError("an EMPTY mask must have no marked pixel (or give its source's marked_threshold "
                             "in details, above all its fractions)")
        peak = float(np.max(numerators)) / item.denominator
        if peak >= threshold:
            raise ValueError(f"an EMPTY mask must stay below its source's threshold {threshold:g}: "
                             f"its largest fraction is {peak:.3g}")
    if state == Mask.State.MARKED and not has_pixels:
        state = Mask.State.EMPTY
    return state, encoded, encoded.content_hash


def _new_mask(item: MaskInput, state: str, encoded, digest: str, current: Mask | None) -> Mask:
    mask = Mask(
        galaxy=item.galaxy, image=item.image, structure=item.structure, producer=item.producer, state=state,
        denominator=encoded.denominator if encoded else 1, n_volunteers=item.n_volunteers,
        width=encoded.width if encoded else item.image.width, height=encoded.height if encoded else item.image.height,
        content_hash=digest, details=item.details or {}, supersedes=current, import_batch=item.batch,
    )
    if encoded is not None:
        store_by_content(mask.data, f"{digest[:2]}/{digest[2:4]}/{digest}.png", encoded.png)
        mask.marked_pixels = int(np.count_nonzero(item.numerators))
        mask.peak_numerator = int(np.max(item.numerators)) if item.numerators.size else 0
    return mask


def mask_store(*, galaxy: Galaxy, image: Image, structure: str, producer: Producer, state: str,
               numerators: np.ndarray | None = None, denominator: int = 1, n_volunteers: int | None = None,
               details: dict | None = None, batch: ImportBatch | None = None) -> MaskResult:
    """Store a mask; idempotent. Same content as the current mask -> "unchanged"; different content ->
    a new Mask becomes current and the old one is kept ("replaced"). Masks are never edited in place.

    ``state`` NOT_ASKED takes no numerators. EMPTY and MARKED take numerators on the image's grid;
    EMPTY requires them to be all zero, or all below ``details["marked_threshold"]`` (a source that found
    nothing keeps the fractions it saw below its threshold); MARKED requires some pixel above zero.
    """
    item = MaskInput(galaxy, image, structure, producer, state, numerators, denominator, n_volunteers, details, batch)
    state, encoded, digest = _mask_content(item)
    with transaction.atomic():
        current = (
            Mask.objects.select_for_update()
            .filter(galaxy=galaxy, image=image, structure=structure, producer=producer, is_current=True)
            .first()
        )
        if current is not None and current.content_hash == digest and current.state == state:
            return MaskResult(current, "unchanged")
        if current is not None:
            Mask.objects.filter(pk=current.pk).update(is_current=False)
        mask = _new_mask(item, state, encoded, digest, current)
        mask.save()
    return MaskResult(mask, "replaced" if current is not None else "created")


def masks_store(items: list[MaskInput]) -> list[MaskResult]:
    """``mask_store`` for many masks in one transaction and a handful of queries (generation stores a batch
    of galaxies at a time): all stored, or - on any error - none, so the caller can retry them one galaxy at
    a time to isolate the culprit. Same rules and results as ``mask_store``, item by item; two items for the
    same (galaxy, image, structure, producer) are refused."""
    prepared = [(item, *_mask_content(item)) for item in items]
    keys = [(i.galaxy.pk, i.image.pk, i.structure, i.producer.pk) for i in items]
    if len(set(keys)) != len(keys):
        raise ValueError("masks_store got two masks for the same galaxy, image, structure and producer")
    if not items:
        return []
    with transaction.atomic():
        rows = Mask.objects.select_for_update().filter(
            image_id__in={k[1] for k in keys}, producer_id__in={k[3] for k in keys},
            structure__in={k[2] for k in keys}, is_current=True)
        current = {(m.galaxy_id, m.image_id, m.structure, m.producer_id): m for m in rows}
        results: list[MaskResult | None] = []
        new, superseded = [], []
        for key, (item, state, encoded, digest) in zip(keys, prepared):
            cur = current.get(key)
            if cur is not None and cur.content_hash == digest and cur.state == state:
                results.append(MaskResult(cur, "unchanged"))
                continue
            if cur is not None:
                superseded.append(cur.pk)
            new.append(_new_mask(item, state, encoded, digest, cur))
            results.append(None)
        if superseded:
            Mask.objects.filter(pk__in=superseded).update(is_current=False)
        created = iter(Mask.objects.bulk_create(new))
        for i, r in enumerate(results):
            if r is None:
                mask = next(created)
                results[i] = MaskResult(mask, "replaced" if mask.supersedes_id else "created")
        return results


def classifications_replace(*, galaxy: Galaxy, image: Image, structure: str, rows: list[dict],
                            batch: ImportBatch | None = None) -> int:
    """Keep every volunteer's raw polygons for one task. ``rows``: dicts with classification_id,
    time_stamp, polygons, dropped_polygons. Re-import updates rows by classification id (bulk: three
    queries per task whatever the number of volunteers)."""
    existing = {c.classification_id: c for c in
                VolunteerClassification.objects.filter(galaxy=galaxy, structure=structure)}
    fields = ("image", "time_stamp", "polygons", "dropped_polygons", "import_batch")
    create, update, keep = [], [], set()
    for row in rows:
        values = {"image": image, "time_stamp": row.get("time_stamp", ""), "polygons": row["polygons"],
                  "dropped_polygons": row.get("dropped_polygons", 0), "import_batch": batch}
        cid = row["classification_id"]
        keep.add(cid)
        obj = existing.get(cid)
        if obj is None:
            create.append(VolunteerClassification(galaxy=galaxy, structure=structure, classification_id=cid,
                                                  **values))
        elif any(getattr(obj, f) != values[f] for f in fields if f != "import_batch"):
            for f, v in values.items():
                setattr(obj, f, v)
            update.append(obj)
    VolunteerClassification.objects.bulk_create(create)
    if update:
        VolunteerClassification.objects.bulk_update(update, fields)
    stale = [c.pk for cid, c in existing.items() if cid not in keep]
    if stale:
        VolunteerClassification.objects.filter(pk__in=stale).delete()
    return len(keep)


def galaxy_mask_counts_fill(*, galaxy) -> int:
    """Count marked pixels and peaks of the galaxy's current masks stored before the counts were kept (once;
    the galaxy page shows them). Returns how many masks were counted."""
    missing = Mask.objects.filter(galaxy=galaxy, is_current=True, marked_pixels__isnull=True) \
        .exclude(state=Mask.State.NOT_ASKED)
    n = 0
    for mask in missing:
        mask_counts_fill(mask=mask)
        n += 1
    return n


def mask_counts_fill(*, mask: Mask) -> Mask:
    """Count a mask's marked pixels and peak from its stored PNG (masks stored before the counts were kept)."""
    if mask.state == Mask.State.NOT_ASKED or not mask.data:
        return mask
    with mask.data.open("rb") as fh:
        numerators = pngcodec.decode(fh.read())
    mask.marked_pixels = int(np.count_nonzero(numerators))
    mask.peak_numerator = int(numerators.max()) if numerators.size else 0
    Mask.objects.filter(pk=mask.pk).update(marked_pixels=mask.marked_pixels, peak_numerator=mask.peak_numerator)
    return mask
