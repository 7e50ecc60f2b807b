"""RQ job functions. Each only calls a service; durable status lives on the run rows, not in RQ."""
from __future__ import annotations

import traceback


def generate_chunk(chunk_id: int) -> dict:
    from segmentation.services import generation

    try:
        chunk = generation.chunk_process(chunk_id=chunk_id)
    except Exception as exc:
        generation.chunk_fail(chunk_id=chunk_id, error=f"{exc!r}\n{traceback.format_exc(limit=5)}")
        raise
    return {"done": chunk.done, "skipped": chunk.skipped, "failed": chunk.failed}


def train(run_id: int) -> dict:
    from segmentation.services import training

    run = training.run_train(run_id=run_id)
    return {"status": run.status, "epoch": run.current_epoch}
