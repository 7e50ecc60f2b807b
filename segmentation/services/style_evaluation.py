"""Out-of-style evaluation of a model version (services).

A synthetic survey is made in a *style* (``evalcore.synthetic.styles``: how its images are formed). A
version learns from the styles of its training galaxies; ``style_evaluation`` scores it on synthetic
galaxies of another style that it never saw (not in its manifest), next to its own test split, with the
volunteers' consensus and the arc finder on the same galaxies, all against the truth:

- per structure and source, the mean IoU against the truth (``metrics.sources_vs_truth``): the model's and
  the crowd's thresholds are chosen on the version's own validation split (never on the held-out style);
  the arc finder's masks are binary;
- bar detection (``metrics.quality_report``'s, threshold from the validation split): recall and precision
  of "has a bar" against the truth.

The report is kept in ``ModelVersion.metrics["evaluation_style_<style>"]``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
from django.db import transaction
from django.utils import timezone

from evalcore.measure.results import plain
from evalcore.vocabulary import STRUCTURES
from evalsite.version import code_version
from segmentation.models import Galaxy, Image, Mask, ModelVersion, Producer
from segmentation.selectors.model_versions import version_manifest
from segmentation.services import model_versions

MODEL, CROWD, ARCFINDER = "model", "volunteers' consensus", "arc finder"
GROUPS = ("own", "held_out")


def galaxy_style(truth: dict | None) -> str | None:
    """The style a synthetic galaxy's images were made in (surveys before styles: ``classic``)."""
    if not truth:
        return None
    return truth.get("style", "classic")


def metrics_key(style: str) -> str:
    return f"evaluation_style_{style}"


def trained_styles(version: ModelVersion) -> dict[str, int]:
    """Style -> number of the version's manifest galaxies (all splits) made in it."""
    names = [e["name"] for e in version_manifest(version)["galaxies"]]
    counts: Counter = Counter()
    for start in range(0, len(names), 500):
        for truth in Galaxy.objects.filter(name__in=names[start:start + 500]).values_list("truth", flat=True):
            counts[galaxy_style(truth) or "not synthetic"] += 1
    return dict(counts)


def held_out_images(version: ModelVersion, style: str, *, limit: int | None = None) -> list[Image]:
    """Survey cutouts of synthetic galaxies made in ``style``, with truth, that the version never saw."""
    seen = {e["name"] for e in version_manifest(version)["galaxies"]}
    with_truth = set(Mask.objects.filter(producer__kind=Producer.Kind.TRUTH, is_current=True,
                                         image__kind=Image.Kind.SURVEY_CUTOUT).values_list("image_id", flat=True))
    images = []
    for image in (Image.objects.filter(kind=Image.Kind.SURVEY_CUTOUT, galaxy__synthetic=True)
                  .select_related("galaxy").order_by("galaxy__name", "pk")):
        if image.pk in with_truth and image.galaxy.name not in seen and galaxy_style(image.galaxy.truth) == style:
            images.append(image)
            if limit and len(images) >= limit:
                break
    return images


def _current(image_ids, **filters) -> dict[tuple[int, str], Mask]:
    return {(m.image_id, m.structure): m
            for m in Mask.objects.filter(image_id__in=image_ids, is_current=True, **filters).order_by("created_at")}


def _training_crowd(version: ModelVersion) -> int | None:
    """The volunteers' producer the version learned from (its manifest's mask hashes), if found."""
    entries = version_manifest(version)["galaxies"][:50]
    for masks in model_versions.volunteer_masks_by_hash(entries).values():
        return masks[0].producer_id
    return None


def _arcfinder_maps(images: list[Image], progress=None) -> dict[int, np.ndarray]:
    """Spiral masks of the arc finder per image: its stored current masks, else run now."""
    stored = _current([im.pk for im in images], producer__kind=Producer.Kind.SPARCFIRE, structure="spiral")
    out: dict[int, np.ndarray] = {}
    todo = []
    for im in images:
        m = stored.get((im.pk, "spiral"))
        f = m.fractions() if m is not None else None
        if f is not None:
            out[im.pk] = np.asarray(f, np.float32)
        else:
            todo.append(im)
    if todo:
        from evalcore.arcfinder.params import ArcFinderParams
        from segmentation.services.sources.arcfinder import Source

        source = Source(ArcFinderParams())
        for im in todo:
            result = source.generate([im])[0]
            if not isinstance(result, Exception):
                spiral = result["spiral"].numerators
                out[im.pk] = (np.zeros((im.height, im.width), np.float32) if spiral is None
                              else np.asarray(spiral, np.float32))
            if progress:
                progress(1)
    return out


def _items_for(version: ModelVersion, images: list[Image], crowd_producer: int | None, predictor,
               progress=None) -> list:
    """EvalItems (model, volunteers, truth) for held-out images: the version's stored masks, else predicted."""
    from evalcore.unet.metrics import EvalItem

    ids = [im.pk for im in images]
    truth = _current(ids, producer__kind=Producer.Kind.TRUTH)
    vol_filter = {"producer_id": crowd_producer} if crowd_producer else {"producer__kind": Producer.Kind.VOLUNTEERS}
    volunteers = _current(ids, **vol_filter)
    stored = _current(ids, producer=version.producer)
    items, to_predict = [], []
    for im in images:
        if all((im.pk, s) in stored for s in STRUCTURES):
            pred = {s: stored[(im.pk, s)].fractions() for s in STRUCTURES}
            if all(p is not None for p in pred.values()):
                items.append((im, pred))
                continue
        to_predict.append(im)
    if to_predict:
        from segmentation.selectors.images import image_rgb

        predictor = predictor or model_versions.version_predictor(version)
        for start in range(0, len(to_predict), predictor.batch_size):
            batch = to_predict[start:start + predictor.batch_size]
            preds = predictor.predict([image_rgb(im) for im in batch])
            for im, p in zip(batch, preds):
                items.append((im, {s: p[i] for i, s in enumerate(STRUCTURES)}))
            if progress:
                progress(len(batch))

    def fr(masks, key):
        m = masks.get(key)
        return None if m is None else m.fractions()

    return [EvalItem(im.galaxy.name, {s: np.asarray(p[s], np.float32) for s in STRUCTURES},
                     {s: fr(volunteers, (im.pk, s)) for s in STRUCTURES},
                     {s: fr(truth, (im.pk, s)) for s in STRUCTURES}) for im, p in items]


def _maps(items, st: str, arc_maps: dict | None) -> dict:
    m = {MODEL: {i.key: i.pred[st] for i in items},
         CROWD: {i.key: i.volunteers[st] for i in items if i.volunteers.get(st) is not None}}
    if arc_maps is not None:
        keys = {i.key for i in items}
        m[ARCFINDER] = {k: v for k, v in arc_maps.items() if k in keys}
    return m


def _truths(items, st: str) -> dict:
    return {i.key: i.truth[st] for i in items if i.truth.get(st) is not None}


def _group(val_items, items, arc_maps: dict[str, np.ndarray], n_boot: int, seed: int) -> dict:
    from evalcore.unet.metrics import quality_report, sources_vs_truth

    out: dict = {"n_galaxies": len(items), "structures": {}}
    for st in STRUCTURES:
        out["structures"][st] = sources_vs_truth(_maps(val_items, st, None), _truths(val_items, st),
                                                 _maps(items, st, arc_maps if st == "spiral" else None),
                                                 _truths(items, st), n_boot=n_boot, seed=seed)
    out["bar_detection"] = quality_report(val_items, items, n_boot=n_boot, seed=seed)["bar_detection"]
    return out


def style_evaluation(*, version: ModelVersion, style: str, n_boot: int = 1000, seed: int = 0,
                     limit: int | None = None, predictor=None, arcfinder: bool = True,
                     progress: Callable[[int], None] | None = None) -> dict:
    """Score ``version`` on the galaxies of ``style`` it never saw and on its own test split, with the
    volunteers' consensus and the arc finder beside it (module docstring). ``limit`` caps the galaxies
    per group. Raises ValueError when there is nothing to evaluate, with the reason."""
    from evalcore.synthetic import styles

    if style not in styles.STYLES:
        raise ValueError(f"unknown style {style!r}; known styles: {', '.join(styles.STYLES)}")
    if not version.manifest:
        raise ValueError(f"model version {version.name} has no training manifest: what it saw is unknown")
    images = held_out_images(version, style, limit=limit)
    if not images:
        raise ValueError(f"no synthetic galaxies of style {style!r} with truth that {version.name} did not train "
                         f"on; make and import a survey in that style first (make_synthetic --style {style} "
                         f"--import)")
    data = model_versions.evaluation_set(version=version, splits=("val", "test"), predictor=predictor, limit=limit)
    if not data.items["val"]:
        raise ValueError(f"no validation galaxies of {version.name} here: thresholds cannot be chosen")
    crowd = _training_crowd(version)
    held = _items_for(version, images, crowd, predictor, progress=progress)
    own = data.items["test"]
    arcs: dict[str, np.ndarray] = {}
    if arcfinder:
        own_images = list(Image.objects.filter(kind=Image.Kind.SURVEY_CUTOUT, galaxy__name__in=[i.key for i in own])
                          .select_related("galaxy"))
        by_pk = {im.pk: im.galaxy.name for im in own_images + images}
        for pk, m in _arcfinder_maps(own_images + images, progress=progress).items():
            arcs[by_pk[pk]] = m
    trained = trained_styles(version)
    report = {
        "style": style, "version": version.name, "trained_styles": trained,
        "held_out": style not in trained,
        "groups": {"own": _group(data.items["val"], own, arcs, n_boot, seed),
                   "held_out": _group(data.items["val"], held, arcs, n_boot, seed)},
        "threshold_split": "val (the version's own styles)", "n_boot": n_boot, "seed": seed, "limit": limit,
        "computed_at": timezone.now().isoformat(timespec="seconds"), "code_version": code_version(),
    }
    report = plain(report)
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(pk=version.pk)
        row.metrics = {**row.metrics, metrics_key(style): report}
        row.save(update_fields=["metrics"])
    version.metrics = row.metrics
    return report


def _mean(report: dict, group: str, structure: str, source: str) -> str:
    s = report["groups"][group]["structures"][structure]["sources"].get(source)
    if not s or s.get("mean") is None:
        return "—"
    return f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}] n={s['n']}"


def summary_lines(report: dict) -> list[str]:
    """The side-by-side table of a style report: IoU vs truth per source on the version's own test split and
    on the held-out style, then bar detection."""
    style = report["style"]
    trained = ", ".join(f"{k} {v}" for k, v in sorted(report["trained_styles"].items()))
    lines = [f"{report['version']}: trained on {trained}; evaluated on style {style} "
             f"({report['groups']['held_out']['n_galaxies']} galaxies it never saw) and on its own test split "
             f"({report['groups']['own']['n_galaxies']} galaxies)"]
    if not report["held_out"]:
        lines.append(f"WARNING: {style} is among the version's training styles: this is not a held-out evaluation")
    w = 34
    lines.append(f"{'IoU vs truth':<31} {'own styles (test split)':<{w}} {'held-out style ' + style:<{w}}")
    for st in STRUCTURES:
        for source in (MODEL, CROWD, ARCFINDER):
            own, held = _mean(report, "own", st, source), _mean(report, "held_out", st, source)
            if own == "—" and held == "—":
                continue
            lines.append(f"{st + ': ' + source:<31} {own:<{w}} {held:<{w}}")
    for group in GROUPS:
        bar = report["groups"][group]["bar_detection"]
        if bar.get("recall") is not None:
            precision = "—" if bar["precision"] is None else f"{bar['precision']:.3f}"
            lines.append(f"bar detection, {'own styles' if group == 'own' else 'held-out style'}: recall "
                         f"{bar['recall']:.3f}, precision {precision} "
                         f"(tp {bar['tp']} fp {bar['fp']} fn {bar['fn']} tn {bar['tn']}, score >= {bar['threshold']})")
        elif bar.get("note"):
            lines.append(f"bar detection, {'own styles' if group == 'own' else 'held-out style'}: {bar['note']}")
    own_m = report["groups"]["own"]["structures"]["spiral"]["sources"].get(MODEL, {}).get("mean")
    held_m = report["groups"]["held_out"]["structures"]["spiral"]["sources"].get(MODEL, {}).get("mean")
    if own_m and held_m is not None:
        lines.append(f"spiral IoU on the held-out style / own styles: {held_m / own_m:.2f}")
    return lines
