"""Import batches: every importer records what it was given and what came of it.
"""
from __future__ import annotations

from contextlib import contextmanager

from django.utils import timezone

from segmentation.models import ImportBatch


# --- import batches ---------------------------------------------------------------------------------
def batch_start(*, kind: str, source: str, arguments: dict | None = None) -> ImportBatch:
    return ImportBatch.objects.create(kind=kind, source=source, arguments=arguments or {})


def batch_finish(*, batch: ImportBatch, summary: dict) -> ImportBatch:
    batch.summary = summary
    batch.finished_at = timezone.now()
    batch.save(update_fields=["summary", "finished_at"])
    return batch


@contextmanager
def batch_running(*, kind: str, source: str, arguments: dict | None = None):
    """An ImportBatch for the ``with`` block. If the block raises (a bug, Ctrl-C), the batch is finished with
    the error in its summary before the exception goes on, so no batch is left looking as if it still ran."""
    batch = batch_start(kind=kind, source=source, arguments=arguments)
    try:
        yield batch
    except BaseException as exc:
        batch.refresh_from_db(fields=["finished_at"])
        if batch.finished_at is None:
            batch_finish(batch=batch, summary={"error": f"{type(exc).__name__}: {exc}" if str(exc)
                                               else type(exc).__name__})
        raise
