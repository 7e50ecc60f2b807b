"""Fault, for real: a worker process measuring a measurement run's chunk is killed with SIGKILL, and the
run is resumed with ``manage.py measure_masks --resume`` while a second worker finishes it.

As in test_faults_worker.py, the workers are real ``manage.py rqworker`` subprocesses on a site of their
own: a SQLite file under tmp_path, or - when the tests run on PostgreSQL (DATABASE_URL) - a database
created on that server for the test and dropped after it. Progress is watched from outside the workers
(sqlite3 / psycopg); Redis is the tests' dedicated database (the ``redis_conn`` fixture).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django_support import TEST_REDIS_URL

from tests.integration.evalsite.test_faults_worker import run_python, script

ROOT = Path(__file__).resolve().parents[3]
N_MASKS = 24
pytestmark = pytest.mark.slow
BASE_URL = os.environ.get("DATABASE_URL", "")

SETUP = """
import numpy as np
from segmentation.services import measurement_runs
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
run = measurement_runs.measurement_start(chunk_size={n})
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


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request, tmp_path, redis_conn):
    """A separate site: its own database (SQLite file, or a new PostgreSQL database on DATABASE_URL's
    server) and media; the tests' Redis database. Yields (environment, count of measurement rows)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "evalsite.settings", "MEDIA_ROOT": str(tmp_path / "media"),
                "EVALSITE_VAR_DIR": str(tmp_path), "REDIS_URL": TEST_REDIS_URL, "OMP_NUM_THREADS": "1",
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    drop = None
    if request.param == "sqlite":
        db_path = tmp_path / "site.sqlite3"
        env["DATABASE_URL"] = f"sqlite:///{db_path}"

        def count():
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
                return conn.execute("SELECT count(*) FROM segmentation_maskmeasurement").fetchone()[0]
    else:
        if not BASE_URL.startswith("postgres"):
            pytest.skip("runs when the tests run on PostgreSQL (DATABASE_URL=postgres://...)")
        import psycopg

        name = f"{urlsplit(BASE_URL).path.lstrip('/') or 'evalsite'}_kill_{uuid.uuid4().hex[:8]}"
        server = _with_db(BASE_URL, "postgres")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = _with_db(BASE_URL, name)

        def drop():
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        def count():
            with psycopg.connect(env["DATABASE_URL"]) as conn:
                return conn.execute("SELECT count(*) FROM segmentation_maskmeasurement").fetchone()[0]
    try:
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=600)
        assert migrate.returncode == 0, migrate.stderr
        yield env, count
    finally:
        if drop:
            drop()


def worker(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "rqworker", "--worker-class", "rq.worker.SimpleWorker",
                             "generation", "--burst"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_measuring_worker_killed_mid_chunk_is_resumed_without_duplicate_or_lost_results(site):
    env, count = site
    ids = run_python(env, script(SETUP.format(n=N_MASKS)))
    assert count() == 0

    proc = worker(env)
    try:
        deadline = time.monotonic() + 300
        while (n := count()) < 3:
            assert proc.poll() is None, f"worker ended before being killed:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "the worker stored nothing within 300 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = count()
    assert 3 <= n <= killed_at < N_MASKS, "the kill must land in the middle of the chunk"

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
