"""Galaxies and their images: created or updated idempotently by every importer.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from evalcore.formats import pngcodec
from segmentation.models import Galaxy, Image, ImportBatch
from segmentation.services.files import pixels_hash, store_by_content

IDENTIFIER_FIELDS = ("manga_id", "name", "iau_name", "nsa_id", "sdss_objid")


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
