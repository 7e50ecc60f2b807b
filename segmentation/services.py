"""Writes of the segmentation app. Importers, generators and jobs call these; views never write directly.

All functions are keyword-only. Each keeps the model invariants (immutable masks, one current mask per
slot, idempotent re-imports) so callers cannot get them wrong.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from evalcore.formats import maskcodec, pngcodec
from segmentation.models import Galaxy, Image, ImportBatch, Mask, Producer, VolunteerClassification

IDENTIFIER_FIELDS = ("manga_id", "name", "iau_name", "nsa_id", "sdss_objid")


# --- import batches ---------------------------------------------------------------------------------
def batch_start(*, kind: str, source: str, arguments: dict | None = None) -> ImportBatch:
    return ImportBatch.objects.create(kind=kind, source=source, arguments=arguments or {})


def batch_finish(*, batch: ImportBatch, summary: dict) -> ImportBatch:
    batch.summary = summary
    batch.finished_at = timezone.now()
    batch.save(update_fields=["summary", "finished_at"])
    return batch


@contextmanager
def batch_running(*, kind: str, source: str, arguments: dict | None = None):
    """An ImportBatch for the ``with`` block. If the block raises (a bug, Ctrl-C), the batch is finished with
    the error in its summary before the exception goes on, so no batch is left looking as if it still ran."""
    batch = batch_start(kind=kind, source=source, arguments=arguments)
    try:
        yield batch
    except BaseException as exc:
        batch.refresh_from_db(fields=["finished_at"])
        if batch.finished_at is None:
            batch_finish(batch=batch, summary={"error": f"{type(exc).__name__}: {exc}" if str(exc)
                                               else type(exc).__name__})
        raise


# --- galaxies ---------------------------------------------------------------------------------------
def galaxy_upsert(*, name: str, defaults: dict | None = None, match: dict | None = None,
                  batch: ImportBatch | None = None) -> tuple[Galaxy, bool]:
    """Find a galaxy by the identifiers in ``match`` (first hit wins, in IDENTIFIER_FIELDS order) or by
    ``name``; create it if absent. Fields in ``defaults`` that are not None overwrite stored values.

    Returns (galaxy, created).
    """
    result = galaxy_sync(name=name, defaults=defaults, match=match, batch=batch)
    return result.galaxy, result.status == "created"


@dataclass(frozen=True)
class GalaxyResult:
    galaxy: Galaxy
    status: str  # "created" | "updated" | "unchanged"
    fields: tuple[str, ...] = ()  # the stored fields an update changed


def galaxy_sync(*, name: str, defaults: dict | None = None, match: dict | None = None,
                batch: ImportBatch | None = None) -> GalaxyResult:
    """``galaxy_upsert`` that also says whether an existing galaxy changed and which fields, so an importer
    can report "updated" for a changed identifier (a file's name in ``other_ids``) and not "unchanged"."""
    match = {k: v for k, v in (match or {}).items() if v not in (None, "")}
    galaxy = None
    for field in IDENTIFIER_FIELDS:
        if field in match:
            galaxy = Galaxy.objects.filter(**{field: match[field]}).first()
            if galaxy:
                break
    if galaxy is None:
        galaxy = Galaxy.objects.filter(name=name).first()
    values = {k: v for k, v in {**match, **(defaults or {})}.items() if v is not None and k != "name"}
    if galaxy is None:
        galaxy = Galaxy.objects.create(name=match.get("name", name), import_batch=batch, **values)
        return GalaxyResult(galaxy, "created")
    changed = [k for k, v in values.items() if getattr(galaxy, k) != v]
    for k in changed:
        setattr(galaxy, k, values[k])
    if changed:
        galaxy.save(update_fields=[*changed, "updated_at"])
    return GalaxyResult(galaxy, "updated" if changed else "unchanged", tuple(changed))


# --- files by content -------------------------------------------------------------------------------
def store_by_content(field_file, name: str, data: bytes) -> None:
    """Point ``field_file`` (an unsaved model's FileField) at ``<upload_to>/<name>``, writing ``data`` there
    only if no file has that name yet: names are content hashes, so one file serves every row with the same
    content and nothing is ever overwritten. A concurrent writer of the same content can make storage pick
    another name; that copy is removed again."""
    full = field_file.field.generate_filename(field_file.instance, name)
    storage = field_file.storage
    if not storage.exists(full):
        saved = storage.save(full, ContentFile(data))
        if saved != full:
            storage.delete(saved)
    field_file.name = full


# --- images -----------------------------------------------------------------------------------------
def pixels_hash(rgb: np.ndarray) -> str:
    arr = np.ascontiguousarray(rgb)
    return hashlib.sha256(f"{arr.dtype}:{arr.shape}:".encode() + arr.tobytes()).hexdigest()


def image_store(*, galaxy: Galaxy, kind: str, rgb: np.ndarray, wcs_header: str = "",
                pixel_scale: float | None = None, bands: str = "", raw_fits: bytes | None = None,
                batch: ImportBatch | None = None, png: bytes | None = None) -> tuple[Image, str]:
    """Store (or update) the galaxy's image of this kind. Returns (image, "created"|"updated"|"unchanged").

    ``png``: ``rgb`` already encoded by ``pngcodec.encode`` (an importer's reading process can do it).
    Updating an image's pixels is refused when masks already live on it (their grid would change).
    """
    digest = pixels_hash(rgb)
    height, width = rgb.shape[:2]
    image = Image.objects.filter(galaxy=galaxy, kind=kind).first()
    meta = {"wcs_header": wcs_header or "", "pixel_scale": pixel_scale, "bands": bands}
    if image is not None and image.content_hash == digest:
        changed = [k for k, v in meta.items() if getattr(image, k) != v]
        for k in changed:
            setattr(image, k, meta[k])
        if changed:
            image.save(update_fields=changed)
        return image, ("updated" if changed else "unchanged")
    if image is not None and (image.width, image.height) != (width, height) and image.masks.exists():
        raise ValueError(
            f"{galaxy.name}: new {kind} image is {width}x{height}, but masks exist on the stored "
            f"{image.width}x{image.height} image"
        )
    status = "updated" if image is not None else "created"
    image = image or Image(galaxy=galaxy, kind=kind)
    image.width, image.height, image.content_hash, image.import_batch = width, height, digest, batch
    for k, v in meta.items():
        setattr(image, k, v)
    store_by_content(image.file, f"{digest[:2]}/{digest}.png", png or pngcodec.encode(rgb))
    if raw_fits is not None:  # named by its own bytes: two band files can render to the same RGB pixels
        raw_digest = hashlib.sha256(raw_fits).hexdigest()
        store_by_content(image.raw, f"{raw_digest[:2]}/{raw_digest}.fits", raw_fits)
    image.save()
    return image, status


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


TRUTH_PRODUCER = {"kind": "truth", "name": "synthetic truth", "version": "1"}


@dataclass(frozen=True)
class TruthResult:
    masks: list[MaskResult]
    galaxy_fields: list[str]  # Galaxy fields the truth changed

    @property
    def changed(self) -> bool:
        return bool(self.galaxy_fields) or any(r.status != "unchanged" for r in self.masks)


def truth_orientation(params: dict) -> dict:
    """The disk's b/a and position angle (deg east of north, [0, 180)) in a synthetic truth, as Galaxy fields;
    empty when the truth lacks them. The truth's b/a is the observed one, as catalogues give it."""
    ba, pa = params.get("axis_ratio"), params.get("position_angle_deg")
    if ba is None or pa is None:
        return {}
    return {"axis_ratio": float(ba), "position_angle": float(pa) % 180.0}


def truth_store(*, galaxy: Galaxy, image: Image, truth, batch: ImportBatch | None = None) -> TruthResult:
    """Store a synthetic galaxy's true masks on ``image`` and its true parameters on the galaxy: the truth,
    ``synthetic`` and the disk orientation (``axis_ratio``, ``position_angle``) the measurements deproject
    with. The truth sets these at every import, over any other value."""
    producer = producer_get_or_create(**TRUTH_PRODUCER, description="Known ground truth of synthetic galaxies.")
    results = []
    for structure, plane in (("spiral", truth.spiral), ("bar", truth.bar)):
        results.append(mask_store(galaxy=galaxy, image=image, structure=structure, producer=producer,
                                  state="marked", numerators=plane.astype(np.int64), denominator=1, batch=batch))
    wanted = {"truth": truth.params, "synthetic": True, **truth_orientation(truth.params)}
    changed = [name for name, value in wanted.items() if getattr(galaxy, name) != value]
    for name in changed:
        setattr(galaxy, name, wanted[name])
    if changed:
        galaxy.save(update_fields=[*changed, "updated_at"])
    return TruthResult(masks=results, galaxy_fields=changed)
