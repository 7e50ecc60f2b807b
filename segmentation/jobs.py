"""RQ jobs of the segmentation app, and the one way to queue each.

Every job calls one service; durable status lives on the run rows, not in RQ. The services create runs
and know nothing of queues: the admin, the commands and the demo start background work through the
``*_launch`` and ``*_resume`` functions here, which create or reopen the run with its service and queue
its jobs when the transaction commits (``evalsite.queues``). When Redis cannot take a job, the run row says
so ("queue unavailable, not started") and the admin offers Resume.
"""
from __future__ import annotations

import traceback

from evalsite import queues
from segmentation.models import GenerationChunk, GenerationRun, MeasurementChunk, MeasurementRun, TrainingRun
from segmentation.services import chunked_runs, generation, measurement_runs, training

CHUNK_TIMEOUT = 6 * 3600
TRAINING_TIMEOUT = 7 * 24 * 3600


# --- the jobs ------------------------------------------------------------------------------------------
def generate_chunk(chunk_id: int) -> dict:
    """Job (queue ``generation``): make and store the masks of one chunk of a generation run."""
    try:
        chunk = generation.chunk_process(chunk_id=chunk_id)
    except Exception as exc:
        generation.chunk_fail(chunk_id=chunk_id, error=f"{exc!r}\n{traceback.format_exc(limit=5)}")
        raise
    return {"done": chunk.done, "skipped": chunk.skipped, "failed": chunk.failed}


def measure_chunk(chunk_id: int) -> dict:
    """Job (queue ``generation``): measure and store the masks of one chunk of a measurement run."""
    try:
        chunk = measurement_runs.chunk_process(chunk_id=chunk_id)
    except Exception as exc:
        measurement_runs.chunk_fail(chunk_id=chunk_id, error=f"{exc!r}\n{traceback.format_exc(limit=5)}")
        raise
    return {"done": chunk.done, "skipped": chunk.skipped, "failed": chunk.failed}


def train(run_id: int) -> dict:
    """Job (queue ``training``): train (or resume) a training run; its model version is made at the end."""
    run = training.run_train(run_id=run_id)
    return {"status": run.status, "epoch": run.current_epoch}


# --- queueing ------------------------------------------------------------------------------------------
def _chunk_enqueue(chunk, job, service) -> None:
    """Queue ``job(chunk.pk)`` on the ``generation`` queue; ``service`` records the chunk's job id, or its
    failure when Redis cannot take the job."""

    def queue_unavailable(exc):
        service.chunk_fail(chunk_id=chunk.pk, error=f"queue unavailable, not started: {exc}")

    kind = "generation" if isinstance(chunk, GenerationChunk) else "measurement"
    job_id = queues.enqueue(queues.GENERATION, job, chunk.pk, job_timeout=CHUNK_TIMEOUT,
                            job_prefix=f"{kind}-chunk-{chunk.pk}", on_failure=queue_unavailable)
    chunked_runs.chunk_job_record(chunk=chunk, job_id=job_id)


def generation_chunk_enqueue(*, chunk: GenerationChunk) -> None:
    _chunk_enqueue(chunk, generate_chunk, generation)


def measurement_chunk_enqueue(*, chunk: MeasurementChunk) -> None:
    _chunk_enqueue(chunk, measure_chunk, measurement_runs)


def training_enqueue(*, run: TrainingRun) -> None:
    def queue_unavailable(exc):
        training.run_not_started(run_id=run.pk, error=f"queue unavailable, not started: {exc}")

    job_id = queues.enqueue(queues.TRAINING, train, run.pk, job_timeout=TRAINING_TIMEOUT,
                            job_prefix=f"training-run-{run.pk}", on_failure=queue_unavailable)
    training.run_job_record(run_id=run.pk, job_id=job_id)


# --- starting and resuming background work --------------------------------------------------------------
def generation_launch(**options) -> GenerationRun:
    """``generation.generation_start(**options)``, then one job per chunk."""
    run = generation.generation_start(**options)
    for chunk in run.chunks.all():
        generation_chunk_enqueue(chunk=chunk)
    return run


def generation_resume(*, run: GenerationRun) -> int:
    """Queue again every chunk that has not succeeded (after a crash, a failure or a stall). Returns how many."""
    return chunked_runs.run_resume(run=run, enqueue=lambda chunk: generation_chunk_enqueue(chunk=chunk))


def measurement_launch(**options) -> MeasurementRun:
    """``measurement_runs.measurement_start(**options)``, then one job per chunk."""
    run = measurement_runs.measurement_start(**options)
    for chunk in run.chunks.all():
        measurement_chunk_enqueue(chunk=chunk)
    return run


def measurement_resume(*, run: MeasurementRun) -> int:
    """Queue again every chunk that has not succeeded. Returns how many."""
    return chunked_runs.run_resume(run=run, enqueue=lambda chunk: measurement_chunk_enqueue(chunk=chunk))


def training_launch(**options) -> TrainingRun:
    """``training.training_start(**options)``, then its job on the ``training`` queue."""
    run = training.training_start(**options)
    training_enqueue(run=run)
    return run


def training_resume(*, run: TrainingRun) -> TrainingRun:
    """Continue a failed, stalled or cancelled run from its last checkpoint, as a job."""
    run = training.run_reopen(run=run)
    training_enqueue(run=run)
    run.refresh_from_db()
    return run
