"""What every chunked background run shares (mask generation, measurement): services over a ``ChunkedRun``
and its ``RunChunk`` rows, whatever the work inside a chunk is.

A run is split into chunks at its start; each chunk is one RQ job. A chunk job calls ``chunk_begin``
(which refuses a cancelled run), reports progress with ``chunk_report`` (counts and a heartbeat, so a dead
worker shows as stalled), and ends with ``chunk_end``, or ``chunk_fail`` when it raised. The run's status
follows from its chunks' (``run_update_status``). ``run_resume`` re-enqueues every chunk that has not
succeeded; the work of a chunk must therefore be idempotent (skip what is already done).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from segmentation.models import ChunkedRun, RunChunk, RunStatus


def chunks_create(*, run: ChunkedRun, ids: Sequence[int], ids_field: str, chunk_size: int) -> int:
    """Split ``ids`` into chunks of ``chunk_size`` for ``run`` (rows of its ``chunks`` relation, the ids in
    their ``ids_field``). Returns the number of chunks."""
    model = run.chunks.model
    chunks = [model(run=run, index=i, **{ids_field: list(ids[start:start + chunk_size])})
              for i, start in enumerate(range(0, len(ids), chunk_size))]
    model.objects.bulk_create(chunks)
    return len(chunks)


def run_finish_empty(*, run: ChunkedRun, log: str) -> None:
    run.status, run.finished_at, run.log = RunStatus.SUCCEEDED, timezone.now(), log
    run.save(update_fields=["status", "finished_at", "log"])


def chunk_begin(*, chunk: RunChunk) -> bool:
    """Mark the chunk (and its run, if queued) running. False when the run was cancelled: the chunk is
    marked cancelled and must not work."""
    run_model, chunk_model, run = type(chunk.run), type(chunk), chunk.run
    if run.status == RunStatus.CANCELLED or run.cancel_requested:
        chunk_model.objects.filter(pk=chunk.pk).update(status=RunStatus.CANCELLED)
        return False
    now = timezone.now()
    chunk_model.objects.filter(pk=chunk.pk).update(
        status=RunStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now
    )
    run_model.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now)
    run_model.objects.filter(pk=run.pk).update(heartbeat_at=now)
    return True


def cancel_requested(*, run: ChunkedRun) -> bool:
    return type(run).objects.filter(pk=run.pk, cancel_requested=True).exists()


def chunk_report(*, chunk: RunChunk, **values) -> None:
    """Store the chunk's progress so far (``done``, ``skipped``, ``failed``, ``failures``, ...) and refresh
    the heartbeats of the chunk and its run."""
    now = timezone.now()
    type(chunk).objects.filter(pk=chunk.pk).update(heartbeat_at=now, **values)
    type(chunk.run).objects.filter(pk=chunk.run_id).update(heartbeat_at=now)


def chunk_end(*, chunk: RunChunk, **values) -> None:
    """Finish the chunk (succeeded, or cancelled if its run was meanwhile) with its final values, then
    derive the run's status."""
    cancelled = cancel_requested(run=chunk.run)
    type(chunk).objects.filter(pk=chunk.pk).update(
        status=RunStatus.CANCELLED if cancelled else RunStatus.SUCCEEDED, finished_at=timezone.now(), **values
    )
    run_update_status(run=chunk.run)


def chunk_fail(*, chunk_model: type[RunChunk], chunk_id: int, error: str) -> None:
    """Record a chunk whose job raised (or could not be enqueued), keeping earlier chunks' errors."""
    chunk_model.objects.filter(pk=chunk_id).update(status=RunStatus.FAILED, finished_at=timezone.now())
    run = chunk_model.objects.select_related("run").get(pk=chunk_id).run
    run.error = f"{run.error}\nchunk {chunk_id}: {error}".strip()
    run.save(update_fields=["error"])
    run_update_status(run=run)


def run_update_status(*, run: ChunkedRun) -> None:
    """Derive the run's status from its chunks' (nothing changes while one is queued or running)."""
    run_model = type(run)
    run = run_model.objects.get(pk=run.pk)
    statuses = list(run.chunks.values_list("status", flat=True))
    if not statuses or any(s in (RunStatus.QUEUED, RunStatus.RUNNING) for s in statuses):
        return
    if run.cancel_requested:
        status = RunStatus.CANCELLED
    elif any(s == RunStatus.FAILED for s in statuses):
        status = RunStatus.FAILED
    else:
        status = RunStatus.SUCCEEDED
    run_model.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now())


def run_progress(*, run: ChunkedRun) -> dict:
    """Progress across chunks, for the admin page and the command line."""
    chunks = list(run.chunks.values("status", "done", "skipped", "failed"))
    done = sum(c["done"] for c in chunks)
    skipped = sum(c["skipped"] for c in chunks)
    failed = sum(c["failed"] for c in chunks)
    by_status: dict[str, int] = {}
    for c in chunks:
        by_status[c["status"]] = by_status.get(c["status"], 0) + 1
    return {
        "total": run.total, "done": done, "skipped": skipped, "failed": failed,
        "processed": done + skipped + failed, "chunks": by_status, "status": run.status,
        "stalled": run.is_stalled,
    }


def chunk_job_record(*, chunk: RunChunk, job_id: str) -> None:
    type(chunk).objects.filter(pk=chunk.pk).update(job_id=job_id)


def run_resume(*, run: ChunkedRun, enqueue: Callable[[RunChunk], None]) -> int:
    """Re-enqueue every chunk that has not succeeded (after a crash, a failure or a stall). Returns how many."""
    with transaction.atomic():
        chunks = list(run.chunks.exclude(status=RunStatus.SUCCEEDED))
        run.chunks.filter(pk__in=[c.pk for c in chunks]).update(status=RunStatus.QUEUED)
        type(run).objects.filter(pk=run.pk).update(
            status=RunStatus.QUEUED if chunks else run.status, cancel_requested=False, finished_at=None
        )
        for chunk in chunks:
            enqueue(chunk)
    return len(chunks)


def run_cancel(*, run: ChunkedRun) -> None:
    """Ask the run to stop: queued chunks are cancelled now, running ones stop at their next batch."""
    type(run).objects.filter(pk=run.pk).update(cancel_requested=True)
    run.chunks.filter(status=RunStatus.QUEUED).update(status=RunStatus.CANCELLED)
    run_update_status(run=run)
