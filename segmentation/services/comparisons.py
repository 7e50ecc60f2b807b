"""Measurements compared: each mask source against a reference catalogue or the synthetic truth
(agreement statistics, chirality), and the report files (CSV and figure).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from evalcore import vocabulary
from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalcore.measure.agreement import AgreementReport
from segmentation.models import (
    ExternalCatalogue,
    Galaxy,
    Mask,
    MaskMeasurement,
    Producer,
)
from segmentation.selectors.measurements import masks_selection

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
