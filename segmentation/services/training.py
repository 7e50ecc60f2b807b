"""Training runs and model versions (services; the RQ job ``jobs.train`` calls ``run_train``).

The science is in ``evalcore.unet``; this module chooses the galaxies, loads their images and
volunteer masks from storage, reports progress to the TrainingRun row, and turns the best weights into
a ModelVersion with complete provenance (manifest of training galaxies and mask hashes, code and
package versions, test metrics).
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from evalcore.unet.manifest import NOT_ASKED, ManifestEntry, manifest_bytes
from evalsite import queues
from evalsite.version import code_version, package_versions
from segmentation.models import Image, Mask, ModelVersion, Producer, RunStatus, TrainingRun
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset
from segmentation.selectors.images import image_rgb
from segmentation.services.masks import producer_get_or_create

log = logging.getLogger(__name__)


@dataclass
class LabelledGalaxy:
    galaxy_id: int
    name: str
    image_id: int
    split: str
    masks: dict  # structure -> Mask | None (None = not asked)


def label_producer(selection: dict) -> Producer:
    """The producer whose masks the model learns from: the chosen one, else the volunteer producer with most
    masks. The chosen one may be volunteers or, on a synthetic survey, the truth (what a model could learn from
    perfect labels: the ceiling the images allow, docs/measurements.md)."""
    if selection.get("label_producer"):
        kinds = (Producer.Kind.VOLUNTEERS, Producer.Kind.TRUTH)
        chosen = Producer.objects.filter(pk=selection["label_producer"], kind__in=kinds).first()
        if chosen is None:
            raise ValueError(f"no volunteer or truth producer {selection['label_producer']} to learn from")
        return chosen
    best = (Producer.objects.filter(kind=Producer.Kind.VOLUNTEERS).annotate(n=Count("masks")).order_by("-n")
            .first())
    if best is None:
        raise ValueError("no volunteer masks to learn from: import GZ3D files (or make a synthetic survey) first")
    return best


def truth_producer() -> Producer:
    """The producer of a synthetic survey's true masks, to learn from instead of the volunteers."""
    truth = Producer.objects.filter(kind=Producer.Kind.TRUTH).first()
    if truth is None:
        raise ValueError("no true masks to learn from: make a synthetic survey first")
    return truth


def select_galaxies(selection: dict):
    """The galaxies of a training selection as stored on its run (``synthetic``: True, False or None;
    ``names``; ``limit``: the first N by id), through the one galaxy selection; a queryset."""
    qs = selected_queryset(GalaxySelection(
        synthetic={True: "only", False: "exclude"}.get(selection.get("synthetic"), "any"),
        names=tuple(selection.get("names") or ())))
    if selection.get("limit"):
        qs = qs.order_by("pk")[: int(selection["limit"])]
    return qs


def labelled_galaxies(*, selection: dict) -> list[LabelledGalaxy]:
    """Galaxies with an image of the chosen kind and volunteer masks on that image's grid, with their split."""
    from evalcore.sky.splits import split_for

    producer = label_producer(selection)
    image_kind = selection.get("image_kind", Image.Kind.SURVEY_CUTOUT)
    galaxies = select_galaxies(selection)
    masks = Mask.objects.filter(producer=producer, is_current=True, image__kind=image_kind,
                                galaxy__in=galaxies).select_related("image", "galaxy")
    by_galaxy: dict[int, dict] = {}
    for m in masks:
        by_galaxy.setdefault(m.galaxy_id, {"galaxy": m.galaxy, "image": m.image, "masks": {}})
        by_galaxy[m.galaxy_id]["masks"][m.structure] = m
    out = []
    for gid, entry in sorted(by_galaxy.items()):
        g = entry["galaxy"]
        ms = {s: (entry["masks"].get(s) if entry["masks"].get(s) and entry["masks"][s].state != Mask.State.NOT_ASKED
                  else None) for s in ("spiral", "bar")}
        if all(v is None for v in ms.values()):
            continue
        out.append(LabelledGalaxy(gid, g.name, entry["image"].id, split_for(g.ra, g.dec, name=g.name), ms))
    return out


def _sample_loader(item: LabelledGalaxy):
    """A callable that loads one training sample from storage the first time the data loader asks for it
    and keeps it for the rest of the run: one query and one decode per sample and run, not per epoch."""
    from evalcore.unet.data import Sample

    kept: list[Sample] = []

    def load():
        if not kept:
            image = Image.objects.get(pk=item.image_id)
            maps = {s: (m.fractions() if m is not None else None) for s, m in item.masks.items()}
            kept.append(Sample(image=image_rgb(image), spiral=maps["spiral"], bar=maps["bar"], key=item.name))
        return kept[0]

    return load


def manifest_entries(items: list[LabelledGalaxy]) -> list[ManifestEntry]:
    return [ManifestEntry(i.galaxy_id, i.name, i.split, i.image_id,
                          {s: (m.content_hash if m else NOT_ASKED) for s, m in i.masks.items()}) for i in items]


# --- runs ---------------------------------------------------------------------------------------------
def training_start(*, config: dict, selection: dict | None = None, requested_by: str = "",
                   time_budget_s: float | None = None, enqueue: bool = True) -> TrainingRun:
    """Validate the configuration, create the run and enqueue it on the ``training`` queue (on commit).

    ``time_budget_s``: stop after the epoch that exceeds this much training time (the demo's 10 minutes);
    the best checkpoint so far becomes the model version.
    """
    from evalcore.unet.model import UNetConfig

    unknown = set(config) - set(UNetConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    unet_config = UNetConfig(**config)
    with transaction.atomic():
        run = TrainingRun.objects.create(
            config={"unet": unet_config.to_dict(), "selection": selection or {}, "time_budget_s": time_budget_s},
            total_epochs=unet_config.epochs, requested_by=requested_by,
        )
        if enqueue:
            run_enqueue(run=run)
    return run


def run_enqueue(*, run: TrainingRun) -> None:
    from segmentation import jobs

    def queue_unavailable(exc):
        TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, finished_at=timezone.now(),
                                                     error=f"queue unavailable, not started: {exc}")

    job_id = queues.enqueue(queues.TRAINING, jobs.train, run.pk, job_timeout=7 * 24 * 3600,
                            job_prefix=f"training-run-{run.pk}", on_failure=queue_unavailable)
    TrainingRun.objects.filter(pk=run.pk).update(job_id=job_id)


def run_resume(*, run: TrainingRun) -> TrainingRun:
    """Continue a failed, stalled or cancelled run from its last checkpoint."""
    if run.status == RunStatus.SUCCEEDED:
        raise ValueError("this run finished; start a new one")
    if run.status == RunStatus.RUNNING and not run.is_stalled:
        raise ValueError("this run is still running")
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, cancel_requested=False, error="",
                                                 finished_at=None)
    run_enqueue(run=run)
    run.refresh_from_db()
    return run


def run_cancel(*, run: TrainingRun) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.CANCELLED,
                                                                          finished_at=timezone.now())


def checkpoint_folder(run: TrainingRun) -> str:
    """The run's checkpoints in media storage (a storage name), so a worker on another machine can resume."""
    return f"checkpoints/run_{run.pk}"


def checkpoints_fetch(run: TrainingRun, local: Path) -> None:
    """Copy the run's stored checkpoints (if any) into the local working folder ``local``."""
    from evalcore.unet.train import BEST, LAST

    folder = checkpoint_folder(run)
    for name in (LAST, BEST):
        if default_storage.exists(f"{folder}/{name}"):
            with default_storage.open(f"{folder}/{name}", "rb") as src, open(local / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def checkpoints_store(run: TrainingRun, local: Path) -> None:
    """Copy the local working folder's checkpoints into media storage (after every epoch)."""
    from evalcore.unet.train import BEST, LAST

    folder = checkpoint_folder(run)
    for name in (LAST, BEST):
        if (local / name).exists():
            if default_storage.exists(f"{folder}/{name}"):
                default_storage.delete(f"{folder}/{name}")
            with open(local / name, "rb") as fh:
                default_storage.save(f"{folder}/{name}", File(fh))


def _append_log(run_id: int, line: str) -> None:
    run = TrainingRun.objects.get(pk=run_id)
    run.log = (run.log + f"{timezone.now():%H:%M:%S} {line}\n")[-100_000:]
    run.save(update_fields=["log"])


def run_train(*, run_id: int, threads: int | None = None, on_epoch=None) -> TrainingRun:
    """Train (or resume) the run; on success create its ModelVersion. Failures are recorded on the run.

    ``on_epoch(report)`` is called after each epoch's progress is saved (the command line's progress bar).
    """
    from evalcore.unet.model import UNetConfig
    from evalcore.unet.train import train

    run = TrainingRun.objects.get(pk=run_id)
    if run.status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):  # finished, or cancelled while queued
        return run
    now = timezone.now()
    TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.RUNNING, started_at=run.started_at or now,
                                                 heartbeat_at=now, error="")
    local = None
    try:
        config = UNetConfig.from_dict(run.config["unet"])
        selection = run.config.get("selection", {})
        items = labelled_galaxies(selection=selection)
        train_items = [i for i in items if i.split == "train"]
        val_items = [i for i in items if i.split == "val"]
        _append_log(run_id, f"{len(train_items)} training and {len(val_items)} validation galaxies "
                            f"({len(items) - len(train_items) - len(val_items)} held out for test)")
        last_cancel_check = [0.0]

        def should_stop() -> bool:
            now_s = time.monotonic()
            if now_s - last_cancel_check[0] < 2:
                return False
            last_cancel_check[0] = now_s
            TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
            return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        def progress(report) -> None:
            checkpoints_store(run, local)
            r = TrainingRun.objects.get(pk=run_id)
            r.current_epoch = report.epoch
            r.history = [*r.history[: report.epoch - 1], report.as_dict()]
            r.timings = {"elapsed_s": report.elapsed_s, "eta_s": report.eta_s, "images_per_s": report.images_per_s}
            r.heartbeat_at = timezone.now()
            r.save(update_fields=["current_epoch", "history", "timings", "heartbeat_at"])
            if on_epoch:
                on_epoch(report)
            # the first batch of the next epoch always asks: a cancel is seen at the latest one epoch on,
            # however fast the epochs are (between epochs the database is asked at most every 2 s)
            last_cancel_check[0] = 0.0

        local = Path(tempfile.mkdtemp(prefix=f"evalsite-run{run.pk}-"))
        checkpoints_fetch(run, local)
        result = train(
            config, [_sample_loader(i) for i in train_items], [_sample_loader(i) for i in val_items],
            checkpoint_dir=local, resume=True, threads=threads,
            time_budget_s=run.config.get("time_budget_s"),
            encoder_weights=settings.EVALSITE_ENCODER_WEIGHTS or None,
            progress=progress, should_stop=should_stop, log=lambda line: _append_log(run_id, line),
        )
        if result.stopped == "cancelled" or not result.history:
            TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
            return TrainingRun.objects.get(pk=run_id)
        version = model_version_create(run=TrainingRun.objects.get(pk=run_id), result=result, items=items)
        TrainingRun.objects.filter(pk=run_id).update(
            status=RunStatus.SUCCEEDED, finished_at=timezone.now(),
            timings={"elapsed_s": result.elapsed_s, "images_per_s": result.images_per_s,
                     "peak_memory_mb": result.peak_memory_mb, "device": result.device,
                     "precision": result.precision, "stopped": result.stopped},
        )
        _append_log(run_id, f"model version {version.name} created ({result.stopped}, best epoch {result.best_epoch})")
    except Exception as exc:
        log.exception("training run %s failed", run_id)
        TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.FAILED, finished_at=timezone.now(),
                                                     error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
    return TrainingRun.objects.get(pk=run_id)


def model_version_create(*, run: TrainingRun | None, result, items: list[LabelledGalaxy],
                         name: str | None = None, metrics: dict | None = None) -> ModelVersion:
    """Store the best weights with their provenance; the first version becomes the active one."""
    config = result.config.to_dict()
    weights = result.model_bytes({"training_run": run.pk if run else None})
    digest = hashlib.sha256(weights).hexdigest()
    name = name or f"unet-{config['encoder']}-{config['image_size']}px-{digest[:8]}"
    with transaction.atomic():
        producer = producer_get_or_create(
            kind=Producer.Kind.MODEL, name=name, version=digest[:12],
            parameters={"config": config}, code_version=code_version(),
            description=f"U-Net trained by run {run.pk}" if run else "U-Net",
        )
        version = ModelVersion(
            name=name, training_run=run, producer=producer, config=config, weights_sha256=digest,
            metrics={"history": result.history, "best_epoch": result.best_epoch,
                     "best_val_loss": result.best_val_loss, **(metrics or {})},
            code_version=code_version(), package_versions=package_versions(),
            is_active=not ModelVersion.objects.filter(is_active=True).exists(),
        )
        version.weights.save(f"{name}.pt", ContentFile(weights), save=False)
        version.manifest.save(f"{name}.json", ContentFile(manifest_bytes(manifest_entries(items))),
                              save=False)
        version.save()
    return version


def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    with transaction.atomic():
        ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.refresh_from_db()
    return version


