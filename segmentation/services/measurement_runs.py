"""Mask measurements as chunked background work (services; ``jobs.measurement_launch`` queues a run's chunks and
the RQ job ``jobs.measure_chunk`` processes each).

A MeasurementRun covers a selection of current masks (as ``manage.py measure_masks`` chooses them: source,
structure, synthetic galaxies, names, split, image kind). It is split into chunks of mask ids, ordered by
image so that a galaxy's masks share a chunk and its disk orientation is found once; each chunk is one
RQ job on the ``generation`` queue (the survey-scale queue), so any number of workers share a survey.

Work is idempotent per mask: a mask already measured by this code version with the same inputs is
skipped (``unchanged``), and a mask has at most one measurement per kind and code version (a database
constraint), so a chunk whose worker died can simply run again. One mask failing is recorded with its
reason; the others go on.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from django.db import DatabaseError, transaction

from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.models import Mask, MeasurementChunk, MeasurementRun
from segmentation.services import chunked_runs, measurements

DEFAULT_CHUNK_SIZE = 128
REPORT_EVERY = 16  # masks between two progress reports (and cancel checks) inside a chunk
COUNT_KEYS = ("created", "updated", "unchanged", "measured", "not_measured")


def measurement_start(*, source: str | None = None, structure: str | None = None, synthetic: str = "any",
                      names: Iterable[str] | None = None, split: str | None = None, image_kind: str | None = None,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, requested_by: str = "") -> MeasurementRun:
    """Create a run over the selected current masks (not-asked masks left out) with its chunks
    (``jobs.measurement_launch`` also queues them). Raises ValueError for an unknown choice."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    names = list(names) if names else None
    masks = measurements.masks_selection(source=source, structure=structure, synthetic=synthetic, names=names,
                                         split=split, image_kind=image_kind)
    ids = list(masks.exclude(state=Mask.State.NOT_ASKED).order_by("image_id", "structure", "id")
               .values_list("pk", flat=True))
    selection = {"source": source, "structure": structure, "synthetic": synthetic, "names": names,
                 "split": split, "image_kind": image_kind}
    with transaction.atomic():
        run = MeasurementRun.objects.create(selection=selection, chunk_size=chunk_size, total=len(ids),
                                            requested_by=requested_by, code_version=MEASUREMENT_CODE_VERSION)
        n_chunks = chunked_runs.chunks_create(run=run, ids=ids, ids_field="mask_ids", chunk_size=chunk_size)
        if not n_chunks:
            chunked_runs.run_finish_empty(run=run, log="Nothing to do: no asked mask in the selection.")
    return run


def chunk_process(*, chunk_id: int) -> MeasurementChunk:
    """Measure one chunk's masks and store the results; masks measured before with the same inputs are
    skipped, masks deleted or superseded since the run started are skipped too."""
    chunk = MeasurementChunk.objects.select_related("run").get(pk=chunk_id)
    run = chunk.run
    if not chunked_runs.chunk_begin(chunk=chunk):
        return chunk
    cosmology = measurements.settings_cosmology()
    summary = measurements.MeasureSummary()
    cache: dict = {}
    gone = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    masks = Mask.objects.filter(is_current=True).select_related("galaxy", "image", "producer")

    def report(**extra):
        counts = {k: getattr(summary, k) for k in COUNT_KEYS}
        values = {"done": summary.created + summary.updated,
                  "skipped": summary.unchanged + summary.skipped + gone,
                  "failed": len(summary.failures), "failures": summary.failures, "counts": counts}
        return {**values, **extra}

    ids = chunk.mask_ids
    for start in range(0, len(ids), REPORT_EVERY):
        if chunked_runs.cancel_requested(run=run):
            break
        part = ids[start:start + REPORT_EVERY]
        batch = {m.pk: m for m in masks.filter(pk__in=part)}  # read in full: no cursor open while writing
        for pk in part:
            mask = batch.get(pk)
            if mask is None:
                gone += 1
                continue
            try:
                measurements._measure_one(mask, cosmology, cache, summary)  # records ValueError / OSError
            except DatabaseError:
                raise  # the database is gone: the chunk fails and is resumed, not every mask
            except Exception as exc:  # anything else fails this mask alone, with its reason
                summary.failures.append({"mask": mask.pk, "galaxy": mask.galaxy.name,
                                         "structure": mask.structure, "reason": repr(exc)})
        chunked_runs.chunk_report(chunk=chunk, **report())
    chunked_runs.chunk_end(chunk=chunk, **report(timings={"measure_s": round(time.perf_counter() - t0, 3),
                                                     "cpu_s": round(time.process_time() - cpu0, 3)}))
    chunk.refresh_from_db()
    return chunk


def chunk_fail(*, chunk_id: int, error: str) -> None:
    """Record a chunk whose job raised (called from the job's failure path)."""
    chunked_runs.chunk_fail(chunk_model=MeasurementChunk, chunk_id=chunk_id, error=error)


def run_progress(*, run: MeasurementRun) -> dict:
    """Progress across chunks (masks), with the counts of created, updated and unchanged results."""
    progress = chunked_runs.run_progress(run=run)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for c in run.chunks.values_list("counts", flat=True):
        for k in COUNT_KEYS:
            counts[k] += (c or {}).get(k, 0)
    return {**progress, "counts": counts}


def run_cancel(*, run: MeasurementRun) -> None:
    chunked_runs.run_cancel(run=run)


def run_failures(*, run: MeasurementRun, limit: int = 200) -> list[dict]:
    return [f for c in run.chunks.exclude(failures=[]) for f in c.failures][:limit]
