"""Mask generation as chunked background work (services; ``jobs.generation_launch`` queues a run's chunks and the
RQ job ``jobs.generate_chunk`` processes each).

A GenerationRun covers a galaxy selection for one producer (a model version or the arc finder with given
parameters). It is split into chunks; each chunk is one RQ job on the ``generation`` queue, so any number
of workers on any number of machines share the run. Work is idempotent per galaxy: a galaxy whose
current masks from this producer already exist on the target image is skipped, so a chunk whose worker
died can simply run again (no mask is duplicated or lost). A batch's masks are stored in one transaction;
when that fails, galaxy by galaxy, so one bad galaxy fails alone with its reason.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.db import transaction

from segmentation.models import (
    Galaxy,
    GenerationChunk,
    GenerationRun,
    Image,
    Mask,
    ModelVersion,
)
from segmentation.services import chunked_runs
from segmentation.services.masks import MaskInput, masks_store
from segmentation.services.sources.registry import STRUCTURES, get_source

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 64


def _pending_galaxy_ids(*, galaxy_ids: list[int], producer, image_kind: str) -> list[int]:
    """Galaxies that have an image of ``image_kind`` and lack a current mask from ``producer`` for some structure."""
    with_image = set(
        Image.objects.filter(galaxy_id__in=galaxy_ids, kind=image_kind).values_list("galaxy_id", flat=True)
    )
    done: dict[int, int] = {}
    for gid in Mask.objects.filter(
        galaxy_id__in=galaxy_ids, producer=producer, is_current=True, image__kind=image_kind
    ).values_list("galaxy_id", flat=True):
        done[gid] = done.get(gid, 0) + 1
    return [g for g in galaxy_ids if g in with_image and done.get(g, 0) < len(STRUCTURES)]


def generation_start(*, source: str, galaxies: Iterable[Galaxy] | Iterable[int],
                     model_version: ModelVersion | None = None, parameters: dict | None = None,
                     image_kind: str = Image.Kind.SURVEY_CUTOUT, chunk_size: int = DEFAULT_CHUNK_SIZE,
                     selection: dict | None = None, requested_by: str = "") -> GenerationRun:
    """Create a run with its chunks (``jobs.generation_launch`` also queues one job per chunk)."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    impl = get_source(source)
    producer = impl.producer(model_version=model_version, parameters=parameters or {})
    ids = sorted({g if isinstance(g, int) else g.pk for g in galaxies})
    pending = _pending_galaxy_ids(galaxy_ids=ids, producer=producer, image_kind=image_kind)
    checks = {}
    if model_version is not None:
        from segmentation.services.input_checks import check_images

        checks = check_images(version=model_version, images=Image.objects.filter(
            galaxy_id__in=pending, kind=image_kind).select_related("galaxy").order_by("galaxy__name"))
    with transaction.atomic():
        run = GenerationRun.objects.create(
            source=source, producer=producer, model_version=model_version, image_kind=image_kind,
            selection={**(selection or {}), "requested": len(ids), "already_done": len(ids) - len(pending)},
            chunk_size=chunk_size, total=len(pending), requested_by=requested_by, input_checks=checks,
        )
        n_chunks = chunked_runs.chunks_create(run=run, ids=pending, ids_field="galaxy_ids", chunk_size=chunk_size)
        if not n_chunks:
            chunked_runs.run_finish_empty(
                run=run, log="Nothing to do: every selected galaxy already has these masks or has no such image.")
    return run


def chunk_process(*, chunk_id: int, source_impl=None) -> GenerationChunk:
    """Generate and store masks for one chunk's galaxies, skipping those already done."""
    chunk = GenerationChunk.objects.select_related("run", "run__producer", "run__model_version").get(pk=chunk_id)
    run = chunk.run
    if not chunked_runs.chunk_begin(chunk=chunk):
        return chunk

    t_load = time.perf_counter()
    impl = source_impl or get_source(run.source).loaded(run)  # a model is loaded once per worker process
    t_load = time.perf_counter() - t_load
    cpu0 = time.process_time()  # the chunk's CPU time in this process, all its threads (torch's too)
    pending = set(_pending_galaxy_ids(galaxy_ids=chunk.galaxy_ids, producer=run.producer, image_kind=run.image_kind))
    images = {
        im.galaxy_id: im
        for im in Image.objects.filter(galaxy_id__in=pending, kind=run.image_kind).select_related("galaxy")
    }
    done = skipped = failed = 0
    failures: list[dict] = []
    t_model = t_store = 0.0
    todo = [gid for gid in chunk.galaxy_ids if gid in pending]
    skipped = len(chunk.galaxy_ids) - len(todo)
    for batch_start in range(0, len(todo), impl.batch_size):
        if chunked_runs.cancel_requested(run=run):
            break
        batch = [images[g] for g in todo[batch_start:batch_start + impl.batch_size]]
        t0 = time.perf_counter()
        outputs = impl.generate(batch)  # one entry per image: dict structure -> MaskOutput, or an Exception
        t1 = time.perf_counter()
        ok = []
        for image, output in zip(batch, outputs):
            if isinstance(output, Exception):
                failed += 1
                failures.append({"galaxy": image.galaxy.name, "galaxy_id": image.galaxy_id, "reason": str(output)})
            else:
                ok.append((image, output))
        stored, store_failures = _store(ok, run.producer)
        done += stored
        failed += len(store_failures)
        failures.extend(store_failures)
        t_model += t1 - t0
        t_store += time.perf_counter() - t1
        chunked_runs.chunk_report(chunk=chunk, done=done, skipped=skipped, failed=failed, failures=failures)

    chunked_runs.chunk_end(chunk=chunk, done=done, skipped=skipped, failed=failed, failures=failures,
                           timings={"load_s": round(t_load, 3), "generate_s": round(t_model, 3),
                                    "store_s": round(t_store, 3), "cpu_s": round(time.process_time() - cpu0, 3)})
    chunk.refresh_from_db()
    return chunk


def _mask_inputs(image: Image, output: dict, producer) -> list:
    return [MaskInput(galaxy=image.galaxy, image=image, structure=structure, producer=producer,
                               state=m.state, numerators=m.numerators, denominator=m.denominator, details=m.details)
            for structure, m in output.items()]


def _store(outputs: list[tuple[Image, dict]], producer) -> tuple[int, list[dict]]:
    """Store a batch's masks: all in one transaction, or - when that fails - galaxy by galaxy, so that a
    storage or database error fails its galaxy (recorded with the reason), not the chunk. Returns the
    number of galaxies stored and the failures."""
    try:
        masks_store([i for image, output in outputs for i in _mask_inputs(image, output, producer)])
        return len(outputs), []
    except Exception:  # find the culprit below; everything else is stored one galaxy at a time
        log.info("storing a batch of %d galaxies at once failed; storing them one by one", len(outputs))
    stored, failures = 0, []
    for image, output in outputs:
        try:
            masks_store(_mask_inputs(image, output, producer))
            stored += 1
        except Exception as exc:
            log.exception("storing masks for galaxy %s failed", image.galaxy_id)
            failures.append({"galaxy": image.galaxy.name, "galaxy_id": image.galaxy_id, "reason": repr(exc)})
    return stored, failures


def chunk_fail(*, chunk_id: int, error: str) -> None:
    """Record a chunk whose job raised (called from the job's failure path)."""
    chunked_runs.chunk_fail(chunk_model=GenerationChunk, chunk_id=chunk_id, error=error)


def run_update_status(*, run_id: int) -> None:
    """Derive the run's status from its chunks."""
    chunked_runs.run_update_status(run=GenerationRun.objects.get(pk=run_id))


def run_progress(*, run: GenerationRun) -> dict:
    """Progress across chunks, for the admin page and the command line."""
    return chunked_runs.run_progress(run=run)


def run_cancel(*, run: GenerationRun) -> None:
    chunked_runs.run_cancel(run=run)
