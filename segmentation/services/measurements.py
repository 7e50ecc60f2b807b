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
from django.db.models import F

from evalcore import vocabulary
from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalcore.measure.agreement import AgreementReport
from evalcore.measure.bar import measure_bar
from evalcore.measure.cosmology import CosmologyParams
from evalcore.measure.spiral import measure_spiral
from segmentation.models import (
    CatalogueEntry,
    ExternalCatalogue,
    Galaxy,
    Image,
    Mask,
    MaskMeasurement,
    Producer,
)

SYNTHETIC_CHOICES = ("any", "only", "exclude")
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
    if synthetic not in SYNTHETIC_CHOICES:
        raise ValueError(f"--synthetic takes {'|'.join(SYNTHETIC_CHOICES)}, got {synthetic!r}")
    if synthetic == "only":
        qs = qs.filter(galaxy__synthetic=True)
    elif synthetic == "exclude":
        qs = qs.filter(galaxy__synthetic=False)
    if names:
        qs = qs.filter(galaxy__name__in=list(names))
    if split:
        from segmentation.selectors.galaxies import galaxy_ids_in_split

        selected = Galaxy.objects.filter(pk__in=qs.values("galaxy_id"))
        qs = qs.filter(galaxy_id__in=galaxy_ids_in_split(split, selected))
    return qs


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


# --- external catalogues --------------------------------------------------------------------------------
@dataclass
class CatalogueImport:
    catalogue: ExternalCatalogue
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # rows of an earlier import of the same catalogue no longer in the file

    def lines(self) -> list[str]:
        c = self.catalogue
        return [f"catalogue {c.name!r}: created {self.created}, updated {self.updated}, unchanged "
                f"{self.unchanged}, removed {self.removed}; quantities: "
                + ", ".join(f"{q} [{c.units.get(q) or 'no unit'}]" for q in c.column_mapping.get("values", {}))]


def catalogue_import(*, path, name: str, key: str, ra: str, dec: str, values: dict[str, str],
                     units: dict[str, str] | None = None, citation: str = "",
                     max_bytes: int | None = None) -> CatalogueImport:
    """Import a reference catalogue (CSV or FITS table) as ``ExternalCatalogue`` + ``CatalogueEntry`` rows.

    ``key``, ``ra``, ``dec`` (deg) name the identifier and position columns; ``values`` maps a quantity
    name to its column (e.g. {"bar_length": "length_avg", "bar_length_err": "length_stdev"}), ``units``
    a quantity to its unit (e.g. {"bar_length": "kpc"}). All-or-nothing: every problem (missing column,
    text in a number column, repeated key) is reported before anything is written, as a
    ``evalcore.sky.catalogue.CatalogueError``. Importing the same name again replaces the rows.
    """
    from evalcore.sky import catalogue as cat

    units = dict(units or {})
    if not name.strip():
        raise cat.CatalogueError("the catalogue needs a --name")
    unknown_units = sorted(set(units) - set(values))
    if unknown_units:
        raise cat.CatalogueError(f"--unit given for {unknown_units}, which no --map names")
    table = cat.read_table(path, max_bytes=max_bytes)
    problems = []

    def column(spec, what):
        try:
            return table.find(spec)
        except cat.CatalogueError as exc:
            problems.append(f"{what}: {exc}")
            return None

    key_col, ra_col, dec_col = column(key, "--key"), column(ra, "--ra"), column(dec, "--dec")
    value_cols = {q: column(c, f"--map {q}") for q, c in values.items()}
    if problems:
        raise cat.CatalogueError("; ".join(problems))
    rows, seen = {}, {}
    for i in range(table.n_rows):
        line = i + 2  # CSV line number (header is line 1)
        row_key = table.columns[key_col][i]
        if row_key is None:
            problems.append(f"row {line}: no {key_col}")
            continue
        row_key = str(row_key)
        if row_key in seen:
            problems.append(f"row {line}: {key_col} {row_key} repeats row {seen[row_key]}")
            continue
        seen[row_key] = line
        entry = {}
        for field_name, col in (("ra", ra_col), ("dec", dec_col)):
            try:
                entry[field_name] = cat.as_float(table.columns[col][i], f"row {line} {col}")
            except ValueError as exc:
                problems.append(str(exc))
        entry["values"] = {}
        for q, col in value_cols.items():
            try:
                entry["values"][q] = cat.as_float(table.columns[col][i], f"row {line} {col}")
            except ValueError as exc:
                problems.append(str(exc))
        rows[row_key] = entry
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise cat.CatalogueError(f"{table.source}: nothing imported: " + "; ".join(problems[:10]) + more)

    mapping = {"key": key_col, "ra": ra_col, "dec": dec_col, "values": value_cols}
    with transaction.atomic():
        catalogue, _ = ExternalCatalogue.objects.get_or_create(name=name.strip())
        catalogue.citation = citation or catalogue.citation
        catalogue.column_mapping, catalogue.units, catalogue.source_file = mapping, units, str(path)
        catalogue.save()
        result = CatalogueImport(catalogue=catalogue)
        old = {e.key: e for e in catalogue.entries.all()}
        new = []
        for row_key, entry in rows.items():
            stored = old.pop(row_key, None)
            if stored is None:
                new.append(CatalogueEntry(catalogue=catalogue, key=row_key, **entry))
                result.created += 1
            elif (stored.ra, stored.dec, stored.values) == (entry["ra"], entry["dec"], entry["values"]):
                result.unchanged += 1
            else:
                stored.ra, stored.dec, stored.values = entry["ra"], entry["dec"], entry["values"]
                stored.save(update_fields=["ra", "dec", "values"])
                result.updated += 1
        CatalogueEntry.objects.bulk_create(new, batch_size=1000)
        if old:
            CatalogueEntry.objects.filter(pk__in=[e.pk for e in old.values()]).delete()
            result.removed = len(old)
    return result


# --- comparisons ----------------------------------------------------------------------------------------
DEFAULT_SOURCES = ("model", "volunteers", "sparcfire")
# Measured attribute for a catalogue quantity, by its unit (lengths) or name (pitch).
MEASURED_FOR_UNIT = {"kpc": "length_kpc", "arcsec": "length_arcsec"}
ERR_OF = {"pitch_abs": "pitch_err"}  # uncertainty attribute where it is not ATTRIBUTE + "_err"


def _value(result: dict | None, attribute: str) -> tuple[float | None, float | None, str | None]:
    """(value, err, reason) of a stored result dict."""
    from evalcore.measure.agreement import measured_value

    if result is None:
        return None, None, f"no measurement by {MEASUREMENT_CODE_VERSION} (run manage.py measure_masks)"
    if attribute not in result:
        return None, None, f"the {result.get('code_version')} result has no {attribute}"
    value, err, reason = measured_value(result, attribute)
    if value is not None and attribute in ERR_OF:
        err = result.get(ERR_OF[attribute])
    return value, err, reason


@dataclass
class SourceValues:
    """One mask source's values of one attribute for a set of galaxies: {key: (value, err, reason)}."""

    label: str
    values: dict[str, tuple[float | None, float | None, str | None]] = field(default_factory=dict)
    positions: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    galaxies: dict[str, Galaxy] = field(default_factory=dict)


def source_values(*, structure: str, attribute: str, sources: Iterable[str] = DEFAULT_SOURCES,
                  synthetic: str = "any", names: Iterable[str] | None = None,
                  split: str | None = None, image_kind: str | None = None) -> dict[str, SourceValues]:
    """Per mask source, every galaxy that has a current ``structure`` mask from any of ``sources``, with
    this source's measured ``attribute`` or the reason it has none (no mask, not asked, not measured...).

    Sources are producer kinds; when several producers of one kind have masks, each gets its own entry
    ("model: unet v2"). A galaxy with masks on several images is keyed "name [image kind]". ``split``
    keeps the galaxies of one split (train, val, test), the sky-cell split of training and of every model
    version's manifest (``selectors.galaxy_ids_in_split``).
    """
    sources = list(sources)
    masks = masks_selection(structure=structure, synthetic=synthetic, names=names, split=split,
                            image_kind=image_kind)
    masks = (masks.filter(producer__kind__in=sources).select_related("galaxy", "image", "producer")
             .order_by("galaxy__name", "image__kind", "id"))
    by_kind: dict[str, set] = {}
    rows = []
    images_of: dict[int, set] = {}
    for mask in masks.iterator(chunk_size=500):
        by_kind.setdefault(mask.producer.kind, set()).add(mask.producer_id)
        images_of.setdefault(mask.galaxy_id, set()).add(mask.image.kind)
        rows.append(mask)
    meas = {m.mask_id: m.result for m in MaskMeasurement.objects.filter(
        mask__in=masks, code_version=MEASUREMENT_CODE_VERSION, kind=structure)}
    out: dict[str, SourceValues] = {}
    producers = {p.pk: p for p in Producer.objects.filter(pk__in=[m.producer_id for m in rows])}

    labels = vocabulary.source_labels((p.pk, p.kind, p.name, p.version) for p in producers.values())
    for kind in sources:
        ids = sorted(by_kind.get(kind, ()))
        for pid in ids or [None]:
            name = labels[pid] if pid else kind
            out[name] = SourceValues(label=name)
    keys = {}
    for mask in rows:
        g = mask.galaxy
        key = g.name if len(images_of[g.pk]) == 1 else f"{g.name} [{mask.image.kind}]"
        keys[key] = g
        entry = out[labels[mask.producer_id]]
        if mask.state == Mask.State.NOT_ASKED:
            entry.values[key] = (None, None, f"{structure} not asked of this source")
        elif mask.state == Mask.State.EMPTY:
            entry.values[key] = (None, None, f"no {structure} marked")
        else:
            entry.values[key] = _value(meas.get(mask.pk), attribute)
    for entry in out.values():
        for key, g in keys.items():
            entry.values.setdefault(key, (None, None, f"no {structure} mask from this source"))
            entry.positions[key] = (g.ra, g.dec)
            entry.galaxies[key] = g
        entry.values = dict(sorted(entry.values.items()))
    return out


def compare_with_catalogue(*, catalogue: ExternalCatalogue | str, quantity: str, measured: str | None = None,
                           structure: str | None = None, radius_arcsec: float = 10.0,
                           sources: Iterable[str] = DEFAULT_SOURCES, synthetic: str = "any",
                           names: Iterable[str] | None = None, split: str | None = None,
                           image_kind: str | None = None) -> dict[str, AgreementReport]:
    """Agreement of a measured attribute with a catalogue quantity, per mask source.

    ``measured`` defaults by the quantity's unit: kpc -> ``length_kpc``, arcsec -> ``length_arcsec``,
    deg with "pitch" in the name -> ``pitch_abs``. The catalogue's ``QUANTITY_err`` is the reference
    uncertainty when mapped. Galaxies are cross-matched by sky position within ``radius_arcsec`` (arcsec);
    every galaxy not used is in the report's ``excluded`` with the reason. ``split`` keeps one split and
    ``image_kind`` the masks on one kind of image, as in ``source_values``.
    """
    from evalcore.measure.agreement import CatalogueRow, MeasuredSource, agreement_report, pair_with_catalogue

    if isinstance(catalogue, str):
        try:
            catalogue = ExternalCatalogue.objects.get(name=catalogue)
        except ExternalCatalogue.DoesNotExist:
            known = ", ".join(ExternalCatalogue.objects.values_list("name", flat=True)) or "none"
            raise ValueError(f"no catalogue named {catalogue!r} (imported: {known})") from None
    quantities = catalogue.column_mapping.get("values", {})
    if quantity not in quantities:
        raise ValueError(f"catalogue {catalogue.name!r} has no quantity {quantity!r}; it has {', '.join(quantities)}")
    unit = catalogue.units.get(quantity, "")
    if measured is None:
        if unit in MEASURED_FOR_UNIT:
            measured = MEASURED_FOR_UNIT[unit]
        elif "pitch" in quantity:
            measured = "pitch_abs"
        else:
            raise ValueError(f"cannot tell which measurement to compare with {quantity!r} (unit {unit!r}): "
                             "give the measured attribute (e.g. length_kpc, deprojected_length_kpc, pitch_abs)")
    structure = structure or ("spiral" if measured.startswith("pitch") or measured in ("n_arms",) else "bar")
    rows = [CatalogueRow(key=e.key, ra=e.ra, dec=e.dec, value=e.values.get(quantity),
                         err=e.values.get(f"{quantity}_err")) for e in catalogue.entries.all().order_by("key")]
    reports = {}
    for label, sv in source_values(structure=structure, attribute=measured, sources=sources,
                                   synthetic=synthetic, names=names, split=split, image_kind=image_kind).items():
        srcs = [MeasuredSource(key=k, ra=sv.positions[k][0], dec=sv.positions[k][1], value=v, err=e, reason=r)
                for k, (v, e, r) in sv.values.items()]
        pairs = pair_with_catalogue(srcs, rows, radius_arcsec=radius_arcsec)
        reports[label] = agreement_report(pairs, quantity=f"{measured} vs {catalogue.name} {quantity}",
                                          unit=unit, source=label)
    return reports


# quantity -> (structure, measured attribute, Galaxy.truth key, unit)
TRUTH_QUANTITIES = {
    "bar_length_kpc": ("bar", "length_kpc", "bar_length_kpc", "kpc"),
    "bar_length_deprojected_kpc": ("bar", "deprojected_length_kpc", "bar_length_deprojected_kpc", "kpc"),
    "bar_length_arcsec": ("bar", "length_arcsec", "bar_length_arcsec", "arcsec"),
    # the same true lengths against the half-maximum profile length
    "bar_profile_length_kpc": ("bar", "profile_length_kpc", "bar_length_kpc", "kpc"),
    "bar_profile_length_deprojected_kpc": ("bar", "profile_deprojected_length_kpc", "bar_length_deprojected_kpc",
                                           "kpc"),
    "pitch_abs": ("spiral", "pitch_abs", "pitch_angle_deg", "deg"),
}


def compare_with_truth(*, quantity: str = "bar_length_kpc", sources: Iterable[str] = DEFAULT_SOURCES,
                       names: Iterable[str] | None = None, split: str | None = None,
                       min_arm_contrast: float | None = None,
                       image_kind: str | None = None) -> dict[str, AgreementReport]:
    """Agreement of a measured quantity with synthetic galaxies' truth (``Galaxy.truth``), per mask source.

    ``quantity``: one of ``TRUTH_QUANTITIES`` (bar lengths in kpc or arcsec, |pitch| in deg). For pitch,
    ``min_arm_contrast`` leaves out galaxies whose true mean arm contrast (``truth["arm_contrast"]``) is
    below it, with that reason. Only synthetic galaxies take part; ``split`` (e.g. "test") keeps one split
    (the sky-cell split of training, as in ``source_values``); ``image_kind`` keeps the masks on one kind of
    image (a galaxy with masks on two images otherwise counts once per image).
    """
    from evalcore.measure.agreement import agreement_report, pair_with_truth

    if quantity not in TRUTH_QUANTITIES:
        raise ValueError(f"unknown truth quantity {quantity!r}; known: {', '.join(TRUTH_QUANTITIES)}")
    structure, attribute, truth_key, unit = TRUTH_QUANTITIES[quantity]
    reports = {}
    for label, sv in source_values(structure=structure, attribute=attribute, sources=sources,
                                   synthetic="only", names=names, split=split, image_kind=image_kind).items():
        truth, values = {}, dict(sv.values)
        for key, g in sv.galaxies.items():
            t = g.truth or {}
            truth[key] = t.get(truth_key)
            contrast = t.get("arm_contrast")
            if min_arm_contrast is not None and (contrast is None or contrast < min_arm_contrast):
                shown = "unknown" if contrast is None else f"{contrast:g}"
                values[key] = (None, None, f"true arm contrast {shown} below {min_arm_contrast:g}")
        pairs = pair_with_truth(values, truth)
        for p in pairs:
            if p.reason and p.reason.startswith("not measured: true arm contrast"):
                p.reason = p.reason.removeprefix("not measured: ")
        reports[label] = agreement_report(pairs, quantity=f"{attribute} vs truth {truth_key}", unit=unit,
                                          source=label)
    return reports


@dataclass
class ChiralityReport:
    source: str
    n: int = 0  # galaxies with a measured and a true chirality
    n_agree: int = 0
    points: list[dict] = field(default_factory=list)  # {"key", "measured", "reference"}
    excluded: list[dict] = field(default_factory=list)  # {"key", "reason"}

    @property
    def fraction(self) -> float | None:
        return self.n_agree / self.n if self.n else None


def chirality_with_truth(*, sources: Iterable[str] = DEFAULT_SOURCES, names: Iterable[str] | None = None,
                         split: str | None = None, image_kind: str | None = None) -> dict[str, ChiralityReport]:
    """Measured spiral chirality (S/Z) against ``truth["chirality"]`` of synthetic galaxies, per source."""
    reports = {}
    for label, sv in source_values(structure="spiral", attribute="chirality", sources=sources,
                                   synthetic="only", names=names, split=split, image_kind=image_kind).items():
        rep = ChiralityReport(source=label)
        for key, (value, _, reason) in sv.values.items():
            true = (sv.galaxies[key].truth or {}).get("chirality")
            if value is None:
                rep.excluded.append({"key": key, "reason": f"not measured: {reason}"})
            elif true is None:
                rep.excluded.append({"key": key, "reason": "no true chirality for this galaxy"})
            else:
                rep.n += 1
                rep.n_agree += value == true
                rep.points.append({"key": key, "measured": value, "reference": true})
        reports[label] = rep
    return reports


# --- report files ---------------------------------------------------------------------------------------
STAT_COLUMNS = ("n", "bias", "scatter", "scatter_robust", "mean_abs_error", "median_abs_error", "relative_bias",
                "relative_scatter", "pearson_r", "pearson_p", "robust_slope", "robust_slope_err",
                "robust_intercept", "robust_intercept_err")


def write_agreement(*, reports: dict[str, AgreementReport], out_dir, stem: str, title: str = "") -> list:
    """Write ``STEM_agreement.csv`` (one row of statistics per source), ``STEM_pairs.csv`` (the pairs used),
    ``STEM_excluded.csv`` (galaxies left out, with reasons) and ``STEM_scatter.png`` (1:1 line) to
    ``out_dir``. Returns the paths."""
    import csv
    from pathlib import Path

    from evalcore.measure.agreement import scatter_plot_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}_{part}" for part in ("agreement.csv", "pairs.csv", "excluded.csv", "scatter.png")]
    with paths[0].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "quantity", "unit", *STAT_COLUMNS, "n_excluded", "notes", "code_version"])
        for label, rep in reports.items():
            w.writerow([label, rep.quantity, rep.unit, *(_csv(getattr(rep, c)) for c in STAT_COLUMNS),
                        len(rep.excluded), "; ".join(rep.notes), rep.code_version])
    with paths[1].open("w", newline="") as fh:
        w = csv.writer(fh)
        cols = ("key", "measured", "measured_err", "reference", "reference_err", "reference_key",
                "separation_arcsec")
        w.writerow(["source", *cols])
        for label, rep in reports.items():
            for p in rep.points:
                w.writerow([label, *(_csv(p.get(c)) for c in cols)])
    with paths[2].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "key", "reason"])
        for label, rep in reports.items():
            for e in rep.excluded:
                w.writerow([label, e["key"], e["reason"]])
    paths[3].write_bytes(scatter_plot_png(reports, title=title))
    return paths


def _csv(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value
