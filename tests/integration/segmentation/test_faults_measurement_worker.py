"""Fault, for real: a worker process measuring a measurement run's chunk is killed with SIGKILL, and the
run is resumed with ``manage.py measure_masks --resume`` while a second worker finishes it.

The workers are real ``manage.py rqworker`` subprocesses on a site of their own (``tests/sites.py``): a
SQLite file under tmp_path, or - when the tests run on PostgreSQL (DATABASE_URL) - a database created on
that server for the test and dropped after it; Redis is the tests' dedicated database.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.sites import ROOT, kill_mid_chunk, run_python, script, separate_site, worker

N_MASKS = 24
pytestmark = pytest.mark.slow

SETUP = """
import numpy as np
from segmentation import jobs
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

SIZE = 112

def spiral(seed):
    # two logarithmic arms, 0/1, on the SIZE px grid (pitch 15-27 deg)
    rows, cols = np.indices((SIZE, SIZE)) - (SIZE - 1) / 2
    r, theta = np.hypot(rows, cols), np.arctan2(-rows, -cols)
    b = np.tan(np.radians(15 + seed / 2))
    out = np.zeros((SIZE, SIZE), np.int64)
    for k in range(2):
        diff = (theta - (np.log(np.maximum(r, 1e-6)) - np.log(4.0)) / b - np.pi * k + np.pi) % (2 * np.pi) - np.pi
        out[(np.abs(diff) < 0.4) & (r > 6) & (r < SIZE / 2 - 3)] = 1
    return out

model = producer_get_or_create(kind="model", name="kill model", version="1")
rgb = np.full((SIZE, SIZE, 3), 120, np.uint8)
for i in range({n}):
    g, _ = galaxy_upsert(name=f"mkill{{i}}", defaults={{"ra": 10.0 + i, "dec": 1.0, "redshift": 0.05,
                                                                "axis_ratio": 0.7, "position_angle": 30.0}})
    im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb, pixel_scale=0.262)
    mask_store(galaxy=g, image=im, structure="spiral", producer=model, state="marked",
                        numerators=spiral(i))
run = jobs.measurement_launch(chunk_size={n})
print(json.dumps({{"run": run.pk}}))
"""

CHECK = """
from collections import Counter
from segmentation.services import measurement_runs
from segmentation.models import MaskMeasurement, MeasurementRun
run = MeasurementRun.objects.get(pk=RUN_ID)
rows = list(MaskMeasurement.objects.values_list("mask_id", "kind", "code_version", "measured"))
chunk = run.chunks.get()
print(json.dumps({
    "progress": measurement_runs.run_progress(run=run),
    "rows": len(rows),
    "measured": sum(r[3] for r in rows),
    "per_slot": sorted(Counter(r[:3] for r in rows).values()),
    "chunk": {"status": chunk.status, "attempts": chunk.attempts, "done": chunk.done, "skipped": chunk.skipped},
}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request, tmp_path, redis_conn):
    with separate_site(tmp_path, request.param) as (env, count):
        yield env, count


def test_a_measuring_worker_killed_mid_chunk_is_resumed_without_duplicate_or_lost_results(site):
    env, count = site

    def stored():
        return count("segmentation_maskmeasurement")

    ids = run_python(env, script(SETUP.format(n=N_MASKS)))
    assert stored() == 0
    killed_at = kill_mid_chunk(env, stored, at_least=3, below=N_MASKS)

    after_kill = run_python(env, script(CHECK, RUN_ID=ids["run"]))
    assert after_kill["rows"] == killed_at and set(after_kill["per_slot"]) == {1}
    assert after_kill["chunk"]["status"] == "running"  # the dead worker never said it finished
    assert after_kill["progress"]["status"] == "running"

    # the command re-enqueues the unfinished chunk and follows the run to its end while a worker does it
    follow = subprocess.Popen([sys.executable, "manage.py", "measure_masks", "--resume", str(ids["run"])],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = follow.stdout.readline()
        assert first.startswith(f"1 chunks of measurement run {ids['run']} queued again"), first
        second = worker(env)
        out, _ = second.communicate(timeout=600)
        assert second.returncode == 0, out
        rest, bar = follow.communicate(timeout=120)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, bar
    assert f"measurement run {ids['run']} succeeded: {N_MASKS} of {N_MASKS} masks" in rest
    assert f"{N_MASKS}/{N_MASKS}" in bar  # the progress bar reached the end

    final = run_python(env, script(CHECK, RUN_ID=ids["run"]))
    assert final["rows"] == N_MASKS and final["per_slot"] == [1] * N_MASKS  # nothing lost, nothing twice
    assert final["measured"] == N_MASKS
    progress = final["progress"]
    assert progress["status"] == "succeeded" and progress["failed"] == 0
    assert progress["total"] == progress["processed"] == N_MASKS
    # the second attempt skipped exactly the masks measured before the kill
    assert final["chunk"] == {"status": "succeeded", "attempts": 2, "done": N_MASKS - killed_at,
                              "skipped": killed_at}
