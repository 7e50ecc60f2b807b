"""Put a galaxy's volunteer (and truth) masks onto another image of it by WCS: Image -> reproject -> services.

The GZ3D subject image has the MaNGA hexagon drawn into it, so models learn from a clean survey cutout
instead; the masks follow it there. Volunteer masks are re-rasterised from the raw polygons (exact k/N);
masks without usable polygons and truth masks are resampled nearest-neighbour. Reprojected masks keep
their producer and say in ``details["reprojected_from"]`` where they came from.
"""
from __future__ import annotations

from django.db import transaction

from evalcore.formats import coords, maskcodec
from evalcore.sky import reproject as sky
from segmentation.models import Galaxy, Image, Mask, Producer, VolunteerClassification
from segmentation.services.masks import MaskResult, mask_store

REPROJECTED_PRODUCERS = (Producer.Kind.VOLUNTEERS, Producer.Kind.TRUTH)


def _wcs(image: Image):
    try:
        wcs = coords.wcs_from_text(image.wcs_header)
    except coords.WCSError as exc:
        raise ValueError(f"{image}: no usable WCS ({exc})") from None
    if wcs is None:
        raise ValueError(f"{image}: no usable WCS (none stored, or not celestial)")
    return wcs


def _numerators(mask: Mask):
    with mask.data.open("rb") as fh:
        return maskcodec.decode_numerators(fh.read()).astype("int64")


def reproject_masks(*, galaxy: Galaxy, target_image: Image, source_image: Image | None = None,
                    batch=None) -> list[MaskResult]:
    """Store on ``target_image`` a copy, reprojected by WCS, of each current volunteer and truth mask of
    ``source_image`` (default: the galaxy's GZ3D subject image). Idempotent; one transaction.

    A truth mask the target image already has from its own file is left alone (it is better than a
    resampled one). Raises ValueError when an image lacks a WCS or belongs to another galaxy.
    """
    if target_image.galaxy_id != galaxy.pk:
        raise ValueError(f"{target_image} is not an image of {galaxy.name}")
    if source_image is None:
        source_image = galaxy.images.filter(kind=Image.Kind.GZ3D_SUBJECT).first()
        if source_image is None:
            raise ValueError(f"{galaxy.name} has no GZ3D subject image to reproject from")
    if source_image.pk == target_image.pk:
        raise ValueError("source and target are the same image")
    source, target = _wcs(source_image), _wcs(target_image)
    shape = (target_image.height, target_image.width)
    masks = (Mask.objects.filter(galaxy=galaxy, image=source_image, is_current=True,
                                 producer__kind__in=REPROJECTED_PRODUCERS).select_related("producer"))
    results = []
    with transaction.atomic():
        for mask in masks:
            origin = {"image": source_image.pk, "image_kind": source_image.kind, "mask": mask.pk,
                      "file": mask.details.get("file")}
            details = {"reprojected_from": origin}
            if mask.producer.kind == Producer.Kind.TRUTH:
                native = Mask.objects.filter(galaxy=galaxy, image=target_image, structure=mask.structure,
                                             producer=mask.producer, is_current=True).first()
                if native is not None and "reprojected_from" not in native.details:
                    continue
            if mask.state == Mask.State.NOT_ASKED:
                results.append(mask_store(
                    galaxy=galaxy, image=target_image, structure=mask.structure, producer=mask.producer,
                    state=Mask.State.NOT_ASKED, details={**details, "method": "not asked"}, batch=batch))
                continue
            rows = list(VolunteerClassification.objects.filter(
                galaxy=galaxy, image=source_image, structure=mask.structure).values_list("polygons", flat=True))
            if mask.producer.kind == Producer.Kind.VOLUNTEERS and rows and len(rows) == mask.denominator:
                numerators = sky.reproject_classification_counts(rows, source, target, shape)
                details["method"] = "polygons moved by WCS and re-rasterised"
            else:
                numerators = sky.resample_nearest(_numerators(mask), source, target, shape)
                details["method"] = "nearest-neighbour resampling of the stored mask"
            results.append(mask_store(
                galaxy=galaxy, image=target_image, structure=mask.structure, producer=mask.producer,
                state=Mask.State.MARKED, numerators=numerators, denominator=mask.denominator,
                n_volunteers=mask.n_volunteers, details=details, batch=batch))
    return results


def reproject_galaxy_masks(*, galaxy_ids, target_kind: str, summary=None, batch=None) -> int:
    """``reproject_masks`` for each galaxy in ``galaxy_ids`` that has an image of ``target_kind``.
    Failures go to ``summary`` (an ImportSummary) when given. Returns the number of galaxies done."""
    done = 0
    for galaxy in Galaxy.objects.filter(pk__in=list(galaxy_ids)):
        target = galaxy.images.filter(kind=target_kind).first()
        if target is None:
            if summary is not None:
                summary.count(f"galaxies without a {target_kind} image")
            continue
        try:
            reproject_masks(galaxy=galaxy, target_image=target, batch=batch)
        except ValueError as exc:
            if summary is None:
                raise
            summary.fail(galaxy.name, f"reprojection onto {target_kind}: {exc}")
            continue
        done += 1
        if summary is not None:
            summary.count(f"galaxies reprojected onto {target_kind}")
    return done
