"""Real SpArcFiRe runs -> spiral masks (binary: any arm cluster = arm) with the arcs in Mask.details.

Galaxies are matched by the SpArcFiRe name (name, SDSS objid, IAU name or MaNGA id). A mask must live on an
image of the same grid as SpArcFiRe's input: the galaxy's image read from ``--images/<name>.fits`` when
given (created, with the galaxy, if unknown), else the galaxy's stored image of the same size. SpArcFiRe
works on the FITS array as read (row 0 = first FITS row); our images are north-up, so the mask is flipped
when the image was flipped on import (known exactly when the FITS is given, else assumed from the FITS
convention, with a warning). One galaxy per transaction; a failure is reported and changes nothing.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from tqdm import tqdm

from evalcore.arcfinder import sparcfire_output as so
from evalcore.formats import coords, imagefiles
from segmentation.models import Galaxy, Image, ImportBatch, Mask, Producer
from segmentation.services.files import pixels_hash
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.summary import ImportSummary
from segmentation.services.masks import mask_store, producer_get_or_create

PRODUCER_NAME = "SpArcFiRe (imported run)"
IMAGE_KINDS_BY_PREFERENCE = (Image.Kind.OTHER, Image.Kind.SURVEY_CUTOUT, Image.Kind.GZ3D_SUBJECT)
INPUT_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")


class GalaxyImportError(ValueError):
    """One galaxy of the run that cannot be imported; the message says why."""


def producer_for(settings_dict: dict) -> Producer:
    """The producer of one run's masks: its ``-S_settings.txt`` are the parameters; the version names them."""
    digest = hashlib.sha256(json.dumps(settings_dict, sort_keys=True, default=str).encode()).hexdigest()
    version = f"settings {digest[:12]}" if settings_dict else "settings unknown"
    return producer_get_or_create(
        kind=Producer.Kind.SPARCFIRE, name=PRODUCER_NAME, version=version, parameters=settings_dict,
        description="Masks read from a SpArcFiRe run (any non-black cluster pixel = arm).",
    )


def _find_galaxy(name: str) -> Galaxy | None:
    query = Q(name=name) | Q(sdss_objid=name) | Q(iau_name=name) | Q(manga_id=name)
    matches = list(Galaxy.objects.filter(query)[:2])
    if len(matches) > 1:
        raise GalaxyImportError(f"{name} matches more than one galaxy ({matches[0].name}, {matches[1].name})")
    return matches[0] if matches else None


def _input_file(images_dir: Path | None, name: str) -> Path | None:
    if images_dir is None:
        return None
    for suffix in INPUT_SUFFIXES:
        path = images_dir / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _image_from_fits(galaxy: Galaxy, data: imagefiles.ImageData, batch) -> Image:
    """The galaxy's image with these pixels, or a new OTHER-kind image from the FITS."""
    digest = pixels_hash(data.rgb)
    same = galaxy.images.filter(content_hash=digest).first()
    if same is not None:
        return same
    wcs = data.wcs
    image, _ = image_store(
        galaxy=galaxy, kind=Image.Kind.OTHER, rgb=data.rgb, wcs_header=coords.wcs_to_text(wcs),
        pixel_scale=coords.pixel_scale_arcsec(wcs) if wcs is not None else None, bands=data.bands,
        raw_fits=data.raw_fits, batch=batch,
    )
    return image


def _image_by_size(galaxy: Galaxy, shape: tuple[int, int]) -> Image:
    for kind in IMAGE_KINDS_BY_PREFERENCE:
        image = galaxy.images.filter(kind=kind, height=shape[0], width=shape[1]).first()
        if image is not None:
            return image
    sizes = ", ".join(f"{i.kind} {i.width}x{i.height}" for i in galaxy.images.all()) or "none"
    raise GalaxyImportError(f"{galaxy.name} has no image of SpArcFiRe's input size {shape[1]}x{shape[0]} "
                            f"(its images: {sizes}); pass --images with the input FITS")


def _details(out: so.GalaxyOutput, folder: Path, flipped: bool | None) -> dict:
    """``galaxy`` and ``arcs`` as SpArcFiRe wrote them (its frame); ``chirality`` and the pitch angles at the
    top level in the stored image's frame, the convention of the arc finder and the measurements."""
    return {
        "source": "sparcfire-run", "folder": str(folder), "mask_from": out.mask_source,
        "flipped_to_north_up": flipped, **so.in_image_frame(out.galaxy, bool(flipped)),
        "frame_note": ("galaxy and arcs are in SpArcFiRe's frame, mirrored top to bottom from the image: their "
                       "S/Z and signed pitch angles are the opposite of the image's") if flipped else
                      "galaxy and arcs are in the image's frame",
        "notes": out.notes, "galaxy": out.galaxy, "arcs": out.arcs,
    }


def import_galaxy(*, directory: Path, name: str, folder: Path, images_dir: Path | None,
                  batch: ImportBatch | None, summary: ImportSummary) -> str:
    """Import one galaxy of the run. Returns the mask's status ("created", "replaced", "unchanged")."""
    fits_path = _input_file(images_dir, name)
    data = None
    if fits_path is not None:
        limits = {"max_pixels": settings.EVALSITE_MAX_IMAGE_PIXELS, "max_bytes": settings.EVALSITE_MAX_FILE_BYTES}
        try:
            data = imagefiles.read_image(fits_path, **limits)
        except imagefiles.ImageFileError as exc:
            raise GalaxyImportError(f"input image {fits_path.name}: {exc}") from None
    out = so.read_galaxy(directory, name, folder, input_shape=data.shape if data is not None else None)
    if data is not None and data.shape != out.mask.shape:
        raise GalaxyImportError(f"the mask is {out.mask.shape[1]}x{out.mask.shape[0]} px but the input image "
                                f"{fits_path.name} is {data.shape[1]}x{data.shape[0]}")
    with transaction.atomic():
        galaxy = _find_galaxy(name)
        if galaxy is None:
            if data is None:
                where = f"no {name}.fits in --images" if images_dir else "no --images given"
                raise GalaxyImportError(f"unknown galaxy {name} ({where}, so it cannot be created)")
            ids = {"sdss_objid": name} if name.isdigit() and 17 <= len(name) <= 20 else {}
            galaxy, _ = galaxy_upsert(name=name, match=ids, batch=batch)
            summary.count("galaxies created")
        if data is not None:
            image, flipped = _image_from_fits(galaxy, data, batch), data.flipped
        else:
            image, flipped = _image_by_size(galaxy, out.mask.shape), True
            summary.warn(name, "no input FITS given: assumed SpArcFiRe's frame is the FITS array with row 0 "
                               "south (flipped to north-up)")
        mask = out.mask[::-1] if flipped else out.mask
        result = mask_store(
            galaxy=galaxy, image=image, structure="spiral", producer=producer_for(out.settings),
            state=Mask.State.MARKED, numerators=mask.astype(np.int64), denominator=1,
            details=_details(out, folder.relative_to(directory) if folder.is_relative_to(directory) else folder,
                             flipped),
            batch=batch,
        )
    summary.count("arcs", len(out.arcs))
    return result.status


def import_run(*, directory, images_dir=None, batch: ImportBatch | None = None,
               progress: bool = True) -> ImportSummary:
    """Import every galaxy of a SpArcFiRe output folder (any depth). Raises GalaxyImportError when the
    folder itself is unusable; galaxies that fail are listed in the summary with their reason."""
    directory = Path(directory)
    images_dir = Path(images_dir) if images_dir else None
    if not directory.is_dir():
        raise GalaxyImportError(f"{directory} is not a folder")
    if images_dir is not None and not images_dir.is_dir():
        raise GalaxyImportError(f"--images {images_dir} is not a folder")
    summary = ImportSummary()
    galaxies = so.find_galaxies(directory)
    if not galaxies:
        summary.warn(str(directory), f"no *{so.K_SUFFIX} or *{so.H_SUFFIX} found")
    for name, folder in tqdm(galaxies, desc="SpArcFiRe galaxies", unit="galaxy", disable=not progress):
        try:
            status = import_galaxy(directory=directory, name=name, folder=folder, images_dir=images_dir,
                                   batch=batch, summary=summary)
        except (GalaxyImportError, so.SparcfireOutputError, ValueError, OSError, IntegrityError) as exc:
            summary.fail(name, str(exc))
            continue
        if status == "created":
            summary.imported += 1
        elif status == "replaced":
            summary.updated += 1
        else:
            summary.unchanged += 1
    return summary
