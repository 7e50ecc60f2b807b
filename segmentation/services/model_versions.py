"""Quality of a model version (services).

Evaluation: the galaxies come from the version's manifest (the split it really used in training, and
the content hashes of the volunteer masks it learned from), so a later evaluation uses the same test set
and the same labels even when masks were re-imported since. The statistics are ``evalcore.unet.metrics``
(thresholds chosen on the validation split, reported on the evaluated split with paired bootstrap
intervals that resample galaxies); this module only gathers the maps from storage, predicts where no
stored masks of the version exist, and keeps the report in ``ModelVersion.metrics``.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from evalcore.measure.results import plain
from evalcore.unet.manifest import NOT_ASKED
from evalcore.vocabulary import SPLITS, STRUCTURES
from evalsite.version import code_version
from segmentation.models import Image, Mask, ModelVersion, Producer
from segmentation.selectors.images import image_rgb
from segmentation.selectors.model_versions import version_manifest


# --- evaluation ---------------------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """The maps gathered for one evaluation: per split a list of ``metrics.EvalItem``, plus what was left out."""

    items: dict[str, list] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)  # [{galaxy, split, reason}]
    stored_predictions: int = 0
    computed_predictions: int = 0
    runtime: dict | None = None


def version_predictor(version: ModelVersion, *, mode: str = "auto", threads: int | None = None):
    """A ``unet.infer.Predictor`` for the version's stored weights (``mode`` "auto" = what generation uses)."""
    from evalcore.unet.infer import Predictor

    with version.weights.open("rb") as fh:
        weights = fh.read()
    return Predictor(weights, mode=mode, threads=threads, batch_size=8)


def _small(a: np.ndarray) -> np.ndarray:
    # float32, not float16: float16 rounds 3/15 to 0.19995, which would drop the pixels where exactly a fifth
    # of the volunteers agree below the 0.2 threshold (metrics.at_least allows for float32 rounding only).
    return np.asarray(a, np.float32)


def volunteer_masks_by_hash(entries: list[dict]) -> dict[tuple[str, str, str], list[Mask]]:
    """(galaxy name, structure, content hash) -> volunteer Masks with that content (any image, current or not)."""
    hashes = {h for e in entries for h in e["masks"].values() if h != NOT_ASKED}
    found: dict[tuple[str, str, str], list[Mask]] = {}
    qs = (Mask.objects.filter(content_hash__in=hashes, producer__kind=Producer.Kind.VOLUNTEERS)
          .select_related("galaxy", "image").order_by("-is_current", "-created_at"))
    for m in qs:
        found.setdefault((m.galaxy.name, m.structure, m.content_hash), []).append(m)
    return found


def manifest_labels(entry: dict, found: dict) -> tuple[Image | None, dict, str]:
    """The image and the volunteer Masks a manifest entry names, or (None, {}, reason)."""
    masks: dict[str, Mask | None] = {}
    image = None
    for structure in STRUCTURES:
        h = entry["masks"].get(structure, NOT_ASKED)
        if h == NOT_ASKED:
            masks[structure] = None
            continue
        candidates = list(found.get((entry["name"], structure, h), []))
        if image is not None:
            candidates = [m for m in candidates if m.image_id == image.pk]
        else:  # prefer the very image the version learned from (same installation), else the same galaxy's
            candidates.sort(key=lambda m: m.image_id != entry.get("image_id"))
        if not candidates:
            return None, {}, (f"the {structure} volunteer mask it learned from (sha256 {h[:12]}) is not "
                              f"stored here (labels re-imported, or galaxy missing in this installation)")
        masks[structure] = candidates[0]
        image = candidates[0].image
    if image is None:
        return None, {}, "no structure was asked"
    return image, masks, ""


def evaluation_set(*, version: ModelVersion, splits: tuple[str, ...] = ("val", "test"), predictor=None,
                   progress: Callable[[int], None] | None = None, limit: int | None = None) -> EvalSet:
    """Gather, for the version's galaxies in ``splits``, the volunteer maps it learned from, the truth
    (synthetic galaxies: current masks of the "truth" producer on the same image) and the version's maps:
    its stored current masks where both structures exist, else predicted now with ``predictor`` (made on
    demand from the stored weights). ``limit`` caps galaxies per split (quick looks). ``progress(n)`` is
    called with the number of galaxies just finished."""
    from evalcore.unet.metrics import EvalItem

    for s in splits:
        if s not in SPLITS:
            raise ValueError(f"unknown split {s!r}; choose from {', '.join(SPLITS)}")
    entries = [e for e in version_manifest(version)["galaxies"] if e["split"] in splits]
    if limit:
        per: dict[str, int] = {}
        kept = []
        for e in entries:
            per[e["split"]] = per.get(e["split"], 0) + 1
            if per[e["split"]] <= limit:
                kept.append(e)
        entries = kept
    out = EvalSet(items={s: [] for s in splits})
    found = volunteer_masks_by_hash(entries)
    resolved = []
    for e in entries:
        image, masks, reason = manifest_labels(e, found)
        if image is None:
            out.skipped.append({"galaxy": e["name"], "split": e["split"], "reason": reason})
            if progress:
                progress(1)
        else:
            resolved.append((e, image, masks))
    image_ids = [im.pk for _, im, _ in resolved]
    truth: dict[tuple[int, str], Mask] = {
        (m.image_id, m.structure): m
        for m in Mask.objects.filter(image_id__in=image_ids, producer__kind=Producer.Kind.TRUTH, is_current=True)
    }
    stored: dict[tuple[int, str], Mask] = {
        (m.image_id, m.structure): m
        for m in Mask.objects.filter(image_id__in=image_ids, producer=version.producer, is_current=True)
    }

    def item(e, image, masks, pred):
        return EvalItem(
            e["name"], {s: _small(pred[i]) for i, s in enumerate(STRUCTURES)},
            {s: (None if m is None else _small(m.fractions())) for s, m in masks.items()},
            {s: _small(truth[(image.pk, s)].fractions()) for s in STRUCTURES if (image.pk, s) in truth},
        )

    to_predict = []
    for e, image, masks in resolved:
        if all((image.pk, s) in stored for s in STRUCTURES):
            pred = [stored[(image.pk, s)].fractions() for s in STRUCTURES]
            out.items[e["split"]].append(item(e, image, masks, pred))
            out.stored_predictions += 1
            if progress:
                progress(1)
        else:
            to_predict.append((e, image, masks))
    if to_predict:
        predictor = predictor or version_predictor(version)
        out.runtime = predictor.describe()
        step = predictor.batch_size
        for start in range(0, len(to_predict), step):
            batch = to_predict[start:start + step]
            pixels = []
            for _, image, _ in batch:
                try:
                    pixels.append(image_rgb(image))
                except (OSError, ValueError) as exc:
                    pixels.append(exc)
            ok = [(b, p) for b, p in zip(batch, pixels) if not isinstance(p, Exception)]
            for (e, _, _), p in zip(batch, pixels):
                if isinstance(p, Exception):
                    out.skipped.append({"galaxy": e["name"], "split": e["split"], "reason": f"image unreadable: {p}"})
            preds = predictor.predict([p for _, p in ok]) if ok else []
            for ((e, image, masks), _), pred in zip(ok, preds):
                out.items[e["split"]].append(item(e, image, masks, pred))
                out.computed_predictions += 1
            if progress:
                progress(len(batch))
    return out


def evaluation_key(split: str) -> str:
    """Where ``ModelVersion.metrics`` keeps the report of ``split`` ("evaluation" is the test split's)."""
    return "evaluation" if split == "test" else f"evaluation_{split}"


def evaluate_version(*, version: ModelVersion, split: str = "test", n_boot: int = 2000, seed: int = 0,
                     predictor=None, progress: Callable[[int], None] | None = None,
                     limit: int | None = None) -> dict:
    """The quality report of ``version`` on ``split`` of its manifest (thresholds chosen on "val"), stored
    in ``version.metrics[evaluation_key(split)]`` and returned. See ``unet.metrics.quality_report`` for
    the fields; added here: split, counts, skipped galaxies with reasons, where the predictions came from."""
    from evalcore.unet.metrics import quality_report

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if not version.manifest:
        raise ValueError(f"model version {version.name} has no training manifest: its test split is unknown")
    splits = ("val",) if split == "val" else ("val", split)
    data = evaluation_set(version=version, splits=splits, predictor=predictor, progress=progress, limit=limit)
    if not data.items[split]:
        reasons = "; ".join(sorted({s["reason"] for s in data.skipped})) or "the manifest lists none"
        raise ValueError(f"no galaxies of the {split} split of {version.name} can be evaluated here ({reasons})")
    report = quality_report(data.items["val"], data.items[split], n_boot=n_boot, seed=seed)
    report.update({
        "split": split, "threshold_split": "val", "n_boot": n_boot, "seed": seed, "limit": limit,
        "predictions": {"stored_masks": data.stored_predictions, "computed": data.computed_predictions,
                        "runtime": data.runtime},
        "skipped": data.skipped[:200], "n_skipped": len(data.skipped),
        "computed_at": timezone.now().isoformat(timespec="seconds"), "code_version": code_version(),
    })
    report = plain(report)
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(pk=version.pk)
        row.metrics = {**row.metrics, evaluation_key(split): report}
        row.save(update_fields=["metrics"])
    version.metrics = row.metrics
    return report


def _ci(d: dict | None, digits: int = 3) -> str:
    if not d or d.get("mean") is None:
        return "—"
    return f"{d['mean']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}] n={d['n']}"


def summary_rows(report: dict) -> list[tuple[str, str, str]]:
    """(structure, quantity, value with 95% interval) rows of a stored report, for tables."""
    rows = []
    for st, r in report.get("structures", {}).items():
        rows.append((st, "L1 vs volunteers", _ci(r.get("l1"), 4)))
        for t, ci in r.get("iou_vs_volunteers", {}).items():
            rows.append((st, f"IoU vs volunteers at {t}", _ci(ci)))
        c = r.get("iou_vs_volunteer_consensus")
        if c:
            rows.append((st, "IoU vs consensus (volunteers >= 0.5)",
                         f"{_ci(c)} at model >= {c['model_threshold_from_val']}"))
        cal = r.get("calibration")
        if cal and cal.get("ece") is not None:
            rows.append((st, "calibration error (ECE, pooled pixels)", f"{cal['ece']:.4f}"))
        tr = r.get("iou_vs_truth")
        if tr and tr.get("n"):
            rows.append((st, "IoU vs truth: model", f"{tr['mean_a']:.3f} at >= {tr['model_threshold']}"))
            rows.append((st, "IoU vs truth: crowd consensus", f"{tr['mean_b']:.3f} at >= {tr['crowd_threshold']}"))
            rows.append((st, "IoU vs truth: model - crowd (paired)",
                         f"{tr['difference']:+.3f} [{tr['low']:+.3f}, {tr['high']:+.3f}] n={tr['n']}"
                         f"{' excludes 0' if tr['excludes_zero'] else ''}"))
    bar = report.get("bar_detection") or {}
    if bar.get("recall") is not None or bar.get("precision") is not None:
        def pct(v, ci):
            if v is None:
                return "—"
            return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

        rows.append(("bar", "detection recall", f"{pct(bar['recall'], bar.get('recall_ci'))} at score >= "
                                                f"{bar['threshold']}"))
        rows.append(("bar", "detection precision", pct(bar["precision"], bar.get("precision_ci"))))
        rows.append(("bar", "detection counts", f"tp {bar['tp']} fp {bar['fp']} fn {bar['fn']} tn {bar['tn']}"))
    elif bar.get("note"):
        rows.append(("bar", "detection", bar["note"]))
    return rows


def calibration_table(report: dict, structure: str) -> list[tuple[str, str, str, int]]:
    """(bin, mean predicted, mean observed volunteer fraction, pixels) rows of the reliability curve."""
    cal = report.get("structures", {}).get(structure, {}).get("calibration") or {}
    edges = cal.get("edges", [])
    rows = []
    for i, n in enumerate(cal.get("count", [])):
        p, o = cal["mean_predicted"][i], cal["mean_observed"][i]
        rows.append((f"{edges[i]:.1f}-{edges[i + 1]:.1f}", "—" if p is None else f"{p:.3f}",
                     "—" if o is None else f"{o:.3f}", int(n)))
    return rows


# --- every mask source against the truth -------------------------------------------------------------------
MASK_SOURCES = (Producer.Kind.MODEL, Producer.Kind.VOLUNTEERS, Producer.Kind.SPARCFIRE)


def sources_vs_truth(*, structure: str = "spiral", split: str = "test", sources=MASK_SOURCES,
                     image_kind: str = Image.Kind.SURVEY_CUTOUT, n_boot: int = 2000, seed: int = 0,
                     progress: Callable[[int], None] | None = None) -> dict:
    """IoU against the truth of the current ``structure`` masks of every source (producer kinds; each
    producer of a kind that has several, e.g. two model versions, is its own row) on the synthetic galaxies
    of ``split``, next to each other with paired bootstrap differences (``metrics.sources_vs_truth``).
    Thresholds of fraction maps are chosen on the "val" split; masks are compared on the image the truth
    is stored on, of ``image_kind`` (survey cutouts by default: the images generation writes masks on).
    ``progress(n)`` is called per galaxy gathered."""
    from evalcore.unet.metrics import sources_vs_truth as compare
    from segmentation.selectors.galaxies import galaxy_ids_in_split

    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; one of {', '.join(STRUCTURES)}")
    if split not in SPLITS or split == "val":
        raise ValueError(f"split must be train or test (thresholds come from val), got {split!r}")
    sources = [str(s) for s in sources]
    truth: dict[str, dict[int, Mask]] = {}  # split -> {image id: truth mask}
    for part in ("val", split):
        rows = (Mask.objects.filter(producer__kind=Producer.Kind.TRUTH, structure=structure, is_current=True,
                                    image__kind=image_kind, galaxy_id__in=galaxy_ids_in_split(part))
                .select_related("galaxy"))
        truth[part] = {m.image_id: m for m in rows}
    masks: dict[int, list[Mask]] = {}
    for m in Mask.objects.filter(image_id__in=[i for t in truth.values() for i in t], structure=structure,
                                 is_current=True, producer__kind__in=sources).select_related("producer"):
        masks.setdefault(m.image_id, []).append(m)
    producers = {m.producer_id: m.producer for ms in masks.values() for m in ms}
    n_kind = Counter(p.kind for p in producers.values())
    label = {pk: p.kind if n_kind[p.kind] == 1 else f"{p.kind}: {p.name} {p.version}" for pk, p in producers.items()}
    gathered = {}
    for part, by_image in truth.items():
        maps: dict[str, dict] = {name: {} for name in label.values()}
        truths: dict[str, np.ndarray] = {}
        n_name = Counter(t.galaxy.name for t in by_image.values())
        for image_id, t in by_image.items():
            key = t.galaxy.name if n_name[t.galaxy.name] == 1 else f"{t.galaxy.name} [image {image_id}]"
            truths[key] = _small(t.fractions())
            for m in masks.get(image_id, []):
                f = m.fractions()
                if f is not None:  # not asked of this source: no map
                    maps[label[m.producer_id]][key] = _small(f)
            if progress:
                progress(1)
        gathered[part] = (maps, truths)
    (val_maps, val_truth), (test_maps, test_truth) = gathered["val"], gathered[split]
    report = compare(val_maps, val_truth, test_maps, test_truth, n_boot=n_boot, seed=seed)
    report.update({"structure": structure, "split": split, "image_kind": str(image_kind), "threshold_split": "val",
                   "n_boot": n_boot, "seed": seed, "computed_at": timezone.now().isoformat(timespec="seconds"),
                   "code_version": code_version()})
    return plain(report)


# --- storing a version ------------------------------------------------------------------------------------
def model_version_store(*, name: str, producer: Producer, config: dict, weights: bytes, manifest: bytes,
                        metrics: dict, code_version: str, package_versions: dict,
                        training_run=None, active: bool = False) -> ModelVersion:
    """The one place a ModelVersion is created (by training and by importing an export): the weights and
    training manifest are stored through the storage API with the version's provenance. Inside the caller's
    transaction."""
    version = ModelVersion(
        name=name, training_run=training_run, producer=producer, config=config,
        weights_sha256=hashlib.sha256(weights).hexdigest(), metrics=metrics, code_version=code_version,
        package_versions=package_versions, is_active=active,
    )
    version.weights.save(f"{name}.pt", ContentFile(weights), save=False)
    if manifest:
        version.manifest.save(f"{name}.json", ContentFile(manifest), save=False)
    version.save()
    return version
