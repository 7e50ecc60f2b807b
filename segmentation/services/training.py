"""Training runs and model versions (services; ``jobs.training_launch`` queues a run and the RQ job ``jobs.train``
calls ``run_train``).

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
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from evalcore.unet.manifest import NOT_ASKED, ManifestEntry, manifest_bytes
from evalsite.version import code_version, package_versions
from segmentation.models import Image, Mask, ModelVersion, Producer, RunStatus, TrainingRun
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset
from segmentation.selectors.images import image_rgb
from segmentation.services.masks import producer_get_or_create
from segmentation.services.model_versions import model_version_store

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
                   time_budget_s: float | None = None) -> TrainingRun:
    """Validate the configuration and create the run (``jobs.training_launch`` also queues it).

    ``time_budget_s``: stop after the epoch that exceeds this much training time (a wall-clock bound for callers
    that want one; the demo trains by epochs); the best checkpoint so far becomes the model version.
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
    return run


def training_continue(*, run: TrainingRun, extra_epochs: int, requested_by: str = "") -> TrainingRun:
    """A new run that continues a finished run's training for ``extra_epochs`` more epochs (same galaxies,
    same configuration otherwise): it starts from the finished run's last checkpoint with a warm restart of
    the learning rate (``unet.train``). Its model version is a new one, gated like any other."""
    from evalcore.unet.model import UNetConfig

    if run.status != RunStatus.SUCCEEDED:
        raise ValueError(f"training run {run.pk} has not finished ({run.status}): resume it instead")
    if extra_epochs < 1:
        raise ValueError(f"extra_epochs must be at least 1, got {extra_epochs}")
    if not default_storage.exists(f"{checkpoint_folder(run)}/last.pt"):
        raise ValueError(f"training run {run.pk} has no checkpoint left to continue from")
    unet = UNetConfig.from_dict(run.config["unet"])
    unet = unet.replace(epochs=unet.epochs + extra_epochs)
    with transaction.atomic():
        new = TrainingRun.objects.create(
            config={**run.config, "unet": unet.to_dict(), "continues_run": run.pk},
            total_epochs=unet.epochs, requested_by=requested_by or run.requested_by,
        )
    return new


def run_job_record(*, run_id: int, job_id: str) -> None:
    TrainingRun.objects.filter(pk=run_id).update(job_id=job_id)


def run_not_started(*, run_id: int, error: str) -> None:
    """The run's job could not be queued (Redis down): it failed with that reason, and can be resumed."""
    TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.FAILED, finished_at=timezone.now(), error=error)


def run_reopen(*, run: TrainingRun) -> TrainingRun:
    """Mark a failed, stalled or cancelled run queued again, to continue from its last checkpoint (by
    ``jobs.training_resume``, or ``run_train`` in this process)."""
    if run.status == RunStatus.SUCCEEDED:
        raise ValueError("this run finished; start a new one")
    if run.status == RunStatus.RUNNING and not run.is_stalled:
        raise ValueError("this run is still running")
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, cancel_requested=False, error="",
                                                 finished_at=None)
    run.refresh_from_db()
    return run


def run_cancel(*, run: TrainingRun) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.CANCELLED,
                                                                          finished_at=timezone.now())


def checkpoint_folder(run: TrainingRun) -> str:
    """The run's checkpoints in media storage (a storage name), so a worker on another machine can resume."""
    return f"checkpoints/run_{run.pk}"


def checkpoints_fetch(run: TrainingRun, local: Path, names: tuple[str, ...] | None = None) -> None:
    """Copy the run's stored checkpoints (if any; all, or those ``names``) into the local folder ``local``."""
    from evalcore.unet.train import BEST, LAST

    folder = checkpoint_folder(run)
    for name in names or (LAST, BEST):
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


def run_log_append(run_id: int, line: str) -> None:
    """Add a time-stamped line to a training run's log (the admin shows it live)."""
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
        run_log_append(run_id, f"{len(train_items)} training and {len(val_items)} validation galaxies "
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
        previous = run.config.get("continues_run")
        if previous and not (local / "last.pt").exists():
            checkpoints_fetch(TrainingRun(pk=previous), local, names=("last.pt",))
            run_log_append(run_id, f"continuing training run {previous} from its last checkpoint")
        result = train(
            config, [_sample_loader(i) for i in train_items], [_sample_loader(i) for i in val_items],
            checkpoint_dir=local, resume=True, threads=threads,
            time_budget_s=run.config.get("time_budget_s"),
            encoder_weights=settings.EVALSITE_ENCODER_WEIGHTS or None,
            progress=progress, should_stop=should_stop, log=lambda line: run_log_append(run_id, line),
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
        run_log_append(run_id, f"model version {version.name} created ({result.stopped}, "
                               f"best epoch {result.best_epoch})")
        _gate(run_id, version)
    except Exception as exc:
        log.exception("training run %s failed", run_id)
        TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.FAILED, finished_at=timezone.now(),
                                                     error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
    return TrainingRun.objects.get(pk=run_id)


def _gate(run_id: int, version: ModelVersion) -> None:
    """Evaluate the new version on its test split and gate it; active only when it passed (and none was).
    A failure to evaluate is logged on the run, never fails it: the version stays inactive."""
    from segmentation.services import quality_gate

    try:
        quality_gate.evaluate_and_gate(version=version)
        active = quality_gate.activate_if_passed(version=version)
        version.refresh_from_db()
        run_log_append(run_id, f"model version {version.name} {quality_gate.summary(version)}"
                            f"{'; it is the active version' if active else '; not made active'}")
    except Exception as exc:  # the weights are stored; evaluating can be repeated (evaluate_model)
        log.exception("evaluating model version %s failed", version.name)
        run_log_append(run_id, f"model version {version.name} could not be evaluated ({type(exc).__name__}: {exc}); "
                            "not made active")


def model_version_create(*, run: TrainingRun | None, result, items: list[LabelledGalaxy],
                         name: str | None = None, metrics: dict | None = None) -> ModelVersion:
    """Store the best weights with their provenance. The version is not active: ``run_train`` evaluates it and
    activates it when it passes the quality gate and no version is active yet (``quality_gate``)."""
    from evalcore.unet.augment import settings as augmentation_settings

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
        listing = manifest_bytes(manifest_entries(items), augmentation=augmentation_settings(result.config))
        # not active: only a version that passed the quality gate becomes active (quality_gate)
        version = model_version_store(
            name=name, producer=producer, config=config, weights=weights, manifest=listing,
            metrics={"history": result.history, "best_epoch": result.best_epoch,
                     "best_val_loss": result.best_val_loss, **(metrics or {})},
            code_version=code_version(), package_versions=package_versions(), training_run=run)
    return version


def model_version_activate(*, version: ModelVersion, override_gate: bool = False, by: str = "") -> ModelVersion:
    """Make ``version`` the active one. A version that has not passed the quality gate
    (``quality_gate``) is refused with the gate's reasons, unless ``override_gate`` (a person's explicit
    decision, recorded in ``metrics["gate_override"]``)."""
    from segmentation.services import quality_gate

    if not quality_gate.passed(version):
        if not override_gate:
            raise quality_gate.GateNotPassed(f"{version.name} {quality_gate.summary(version)}")
        ModelVersion.objects.filter(pk=version.pk).update(metrics={
            **version.metrics, "gate_override": {"by": by, "at": timezone.now().isoformat(timespec="seconds"),
                                                 "gate": quality_gate.gate_of(version)}})
    with transaction.atomic():
        ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.refresh_from_db()
    return version


