"""Fault, for real: a generation worker process killed with SIGKILL in the middle of a chunk.

The worker is a real ``manage.py rqworker`` subprocess on a site of its own (``tests/sites.py``): a SQLite
file under tmp_path, set up and checked in subprocesses with the same environment; Redis is the tests'
dedicated database (the ``redis_conn`` fixture).
"""
from __future__ import annotations

import pytest

from tests.sites import kill_mid_chunk, run_python, script, separate_site, worker

N_GALAXIES = 10
pytestmark = pytest.mark.slow

SETUP = """
import numpy as np
from segmentation import jobs
from segmentation.services.galaxies import galaxy_upsert, image_store

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
    g, _ = galaxy_upsert(name=f"kill{{i}}", defaults={{"ra": 10.0 + i, "dec": 1.0}})
    image_store(galaxy=g, kind="survey_cutout", rgb=spiral(112, i))
    galaxies.append(g)
run = jobs.generation_launch(source="sparcfire", galaxies=galaxies, chunk_size={n})
print(json.dumps({{"run": run.pk, "producer": run.producer_id}}))
"""

RESUME = """
from segmentation import jobs
from segmentation.models import GenerationRun
print(json.dumps({"resumed": jobs.generation_resume(run=GenerationRun.objects.get(pk=RUN_ID))}))
"""

CHECK = """
from collections import Counter
from segmentation.services import generation
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


@pytest.fixture
def site(tmp_path, redis_conn):
    with separate_site(tmp_path, "sqlite") as (env, count):
        yield env, count


def test_a_worker_killed_mid_chunk_is_resumed_without_duplicate_or_lost_masks(site):
    env, count = site

    def stored():
        return count("segmentation_mask")

    ids = run_python(env, script(SETUP.format(n=N_GALAXIES)))
    assert stored() == 0
    # two masks per galaxy (spiral + not-asked bar); kill once a few galaxies are stored, not all
    killed_at = kill_mid_chunk(env, stored, at_least=4, below=2 * N_GALAXIES)

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
