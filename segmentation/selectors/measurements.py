"""Reads of measurements: which masks a command selects, a mask's current measurement, and the
headline values the galaxy page shows.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F

from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.models import (
    Galaxy,
    Image,
    Mask,
    MaskMeasurement,
    Producer,
)
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset


def masks_selection(*, source: str | None = None, structure: str | None = None, synthetic: str = "any",
                    names: Iterable[str] | None = None, split: str | None = None, image_kind: str | None = None):
    """Current masks, optionally of one producer kind, one structure, synthetic galaxies only/excluded,
    some galaxy names, the galaxies of one split ("train", "val", "test": the sky-cell split training
    uses, ``selectors.galaxy_ids_in_split``), or on one kind of image. Raises ValueError for an unknown
    choice."""
    qs = Mask.objects.filter(is_current=True)
    if image_kind:
        if image_kind not in Image.Kind.values:
            raise ValueError(f"unknown image kind {image_kind!r}; known: {', '.join(Image.Kind.values)}")
        qs = qs.filter(image__kind=image_kind)
    if source:
        if source not in Producer.Kind.values:
            raise ValueError(f"unknown source {source!r}; known: {', '.join(Producer.Kind.values)}")
        qs = qs.filter(producer__kind=source)
    if structure:
        if structure not in MaskMeasurement.Kind.values:
            raise ValueError(f"unknown structure {structure!r}; known: {', '.join(MaskMeasurement.Kind.values)}")
        qs = qs.filter(structure=structure)
    if synthetic != "any" or names or split:
        galaxies = selected_queryset(GalaxySelection(synthetic=synthetic, names=tuple(names or ()), split=split))
        qs = qs.filter(galaxy__in=galaxies)
    return qs


# --- reading back -------------------------------------------------------------------------------------
def current_measurement(mask: Mask) -> MaskMeasurement | None:
    """The mask's measurement by this code version, or None."""
    return MaskMeasurement.objects.filter(mask=mask, kind=mask.structure,
                                          code_version=MEASUREMENT_CODE_VERSION).first()


# (attribute, label, unit, uncertainty attribute) shown per structure, in order.
HEADLINES = {
    "bar": [
        ("length_kpc", "Bar length", "kpc", "length_kpc_err"),
        ("deprojected_length_kpc", "Deprojected bar length", "kpc", "deprojected_length_kpc_err"),
        ("length_arcsec", "Bar length", "arcsec", "length_arcsec_err"),
        ("length_px", "Bar length", "px", "length_px_err"),
        ("profile_length_kpc", "Bar length at half maximum", "kpc", "profile_length_kpc_err"),
        ("profile_length_px", "Bar length at half maximum", "px", "profile_length_px_err"),
        ("width_kpc", "Bar width", "kpc", None),
        ("position_angle", "Bar position angle", "deg E of N", "position_angle_err"),
        ("axis_ratio", "Bar axis ratio (width/length)", "", None),
    ],
    "spiral": [
        ("n_arms", "Number of arms", "", None),
        ("pitch_abs", "Pitch angle |pitch|", "deg", "pitch_err"),
        ("chirality", "Chirality", "", None),
        ("chirality_agreement", "Chirality agreement (arc-length share)", "", None),
    ],
}


def _format(value, err, unit: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        if err is not None:
            text += f" ± {err:.2g}"
    return f"{text} {unit}".strip()


def headline_values(structure: str, result: dict) -> list[dict]:
    """The values worth showing of a stored result: {"key", "label", "value", "err", "unit", "text"}."""
    rows = []
    for attr, label, unit, err_attr in HEADLINES.get(structure, []):
        value = result.get(attr)
        if value is None:
            continue
        if attr == "length_arcsec" and result.get("length_kpc") is not None:
            continue  # kpc is there: arcsec and px would only repeat it
        if attr == "length_px" and result.get("length_arcsec") is not None:
            continue
        if attr == "profile_length_px" and result.get("profile_length_kpc") is not None:
            continue
        err = result.get(err_attr) if err_attr else None
        rows.append({"key": attr, "label": label, "value": value, "err": err, "unit": unit,
                     "text": _format(value, err, unit)})
    return rows


def measurements_for_galaxy(galaxy: Galaxy) -> list[dict]:
    """Rows for the galaxy page, one per current asked mask, ordered by structure then source.

    Each row: ``source`` (producer kind), ``source_label``, ``producer`` (name and version), ``structure``,
    ``image_kind``, ``mask_id``, ``state``, ``measured`` (True / False / None = not measured yet),
    ``code_version``, ``values`` (see ``headline_values``: value, err, unit, ready-made text) and
    ``reasons`` (why there is no value, and notes such as "no redshift: lengths in arcsec only").
    """
    masks = (Mask.objects.filter(galaxy=galaxy, is_current=True).exclude(state=Mask.State.NOT_ASKED)
             .select_related("producer", "image").order_by("structure", "producer__kind", "producer__name", "id"))
    found = {m.mask_id: m for m in MaskMeasurement.objects.filter(
        mask__in=masks, code_version=MEASUREMENT_CODE_VERSION, kind=F("mask__structure"))}
    rows = []
    for mask in masks:
        p = mask.producer
        row = {"source": p.kind, "source_label": p.get_kind_display(), "producer": f"{p.name} {p.version}",
               "structure": mask.structure, "image_kind": mask.image.kind, "mask_id": mask.pk,
               "state": mask.state, "measured": None, "code_version": None, "values": [], "reasons": []}
        meas = found.get(mask.pk)
        if meas is None:
            row["reasons"].append(f"not measured by {MEASUREMENT_CODE_VERSION} yet (manage.py measure_masks)")
        else:
            result = meas.result
            row.update(measured=meas.measured, code_version=meas.code_version,
                       values=headline_values(mask.structure, result) if meas.measured else [])
            if result.get("reason"):
                row["reasons"].append(result["reason"])
            row["reasons"] += list(result.get("notes") or [])
        rows.append(row)
    return rows
