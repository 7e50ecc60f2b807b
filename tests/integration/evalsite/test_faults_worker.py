"""Fault, for real: a generation worker process killed with SIGKILL in the middle of a chunk.

The worker is a real ``manage.py rqworker`` subprocess. It must see the rows the test made, so this test
does not use pytest-django's test database: it makes its own SQLite file under tmp_path (migrated by a
subprocess), sets the data up and checks the outcome in subprocesses with the same environment, and
watches progress with the standard library's sqlite3 (WAL lets a reader look while the worker writes).
Redis is the tests' dedicated database (the ``redis_conn`` fixture).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django_support import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[3]
N_GALAXIES = 10
pytestmark = pytest.mark.slow

SETUP = """
import numpy as np
from segmentation import generation, services

def spiral(size, seed):
    # a two-armed logarithmic spiral on an exponential disk, grey as RGB
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r, theta = np.hypot(x, y) + 1e-6, np.arctan2(y, x)
    arms = np.cos(2 * (theta - np.log(r) / np.tan(np.radians(18 + seed))))
    light = np.exp(-r / (size / 6)) * (1 + 0.8 * np.clip(arms, 0, None)) + rng.normal(0, 0.01, r.shape)
    grey = (np.clip(light / light.max(), 0, 1) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)

galaxies = []
for i in range({n}):
    g, _ = services.galaxy_upsert(name=f"kill{{i}}", defaults={{"ra": 10.0 + i, "dec": 1.0}})
    services.image_store(galaxy=g, kind="survey_cutout", rgb=spiral(112, i))
    galaxies.append(g)
run = generation.generation_start(source="sparcfire", galaxies=galaxies, chunk_size={n})
print(json.dumps({{"run": run.pk, "producer": run.producer_id}}))
"""

RESUME = """
from segmentation import generation
from segmentation.models import GenerationRun
print(json.dumps({"resumed": generation.run_resume(run=GenerationRun.objects.get(pk=RUN_ID))}))
"""

CHECK = """
from collections import Counter
from segmentation import generation
from segmentation.models import GenerationRun, Mask
run = GenerationRun.objects.get(pk=RUN_ID)
masks = list(Mask.objects.filter(producer=run.producer))
readable = 0
for m in masks:
    if m.state == "not_asked" or m.fractions().shape == (112, 112):
        readable += 1
chunk = run.chunks.get()
print(json.dumps({
    "progress": generation.run_progress(run=run),
    "masks": len(masks),
    "current": sum(m.is_current for m in masks),
    "per_slot": sorted(Counter((m.galaxy_id, m.structure) for m in masks).values()),
    "readable": readable,
    "chunk": {"status": chunk.status, "attempts": chunk.attempts, "done": chunk.done, "skipped": chunk.skipped},
}))
"""


def script(body: str, **values) -> str:
    prelude = "import json, django\ndjango.setup()\n"
    for name, value in values.items():
        prelude += f"{name} = {value!r}\n"
    return prelude + textwrap.dedent(body)


@pytest.fixture
def site(tmp_path, redis_conn):
    """Environment of a separate site: its own SQLite file and media, the tests' Redis database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "evalsite.settings", "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"), "EVALSITE_VAR_DIR": str(tmp_path), "REDIS_URL": TEST_REDIS_URL,
        "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
    })
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr
    return env, tmp_path / "site.sqlite3"


def run_python(env, code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "rqworker", "--worker-class", "rq.worker.SimpleWorker",
                             "generation", "--burst"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stored_masks(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM segmentation_mask").fetchone()[0]


def test_a_worker_killed_mid_chunk_is_resumed_without_duplicate_or_lost_masks(site):
    env, db_path = site
    ids = run_python(env, script(SETUP.format(n=N_GALAXIES)))
    assert stored_masks(db_path) == 0

    proc = worker(env)
    try:
        # two masks per galaxy (spiral + not-asked bar); kill once a few galaxies are stored, not all
        deadline = time.monotonic() + 300
        while (n := stored_masks(db_path)) < 4:
            assert proc.poll() is None, f"worker ended before being killed:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "the worker stored nothing within 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = stored_masks(db_path)
    assert 4 <= n <= killed_at < 2 * N_GALAXIES, "the kill must land in the middle of the chunk"

    after_kill = run_python(env, script(CHECK, RUN_ID=ids["run"]))
    # one transaction per galaxy: a galaxy is either fully stored or not at all
    assert set(after_kill["per_slot"]) == {1} and after_kill["masks"] % 2 == 0
    assert after_kill["chunk"]["status"] == "running"  # the dead worker never said it finished
    assert after_kill["progress"]["status"] == "running" and after_kill["progress"]["processed"] < N_GALAXIES

    assert run_python(env, script(RESUME, RUN_ID=ids["run"])) == {"resumed": 1}
    second = worker(env)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out

    final = run_python(env, script(CHECK, RUN_ID=ids["run"]))
    assert final["masks"] == final["current"] == 2 * N_GALAXIES  # nothing lost, nothing made twice
    assert final["per_slot"] == [1] * (2 * N_GALAXIES)
    assert final["readable"] == 2 * N_GALAXIES  # every stored row has its file
    progress = final["progress"]
    assert progress["status"] == "succeeded" and progress["failed"] == 0
    assert progress["total"] == progress["processed"] == N_GALAXIES
    # the second attempt skipped exactly the galaxies stored before the kill
    assert final["chunk"] == {"status": "succeeded", "attempts": 2, "done": N_GALAXIES - killed_at // 2,
                              "skipped": killed_at // 2}
