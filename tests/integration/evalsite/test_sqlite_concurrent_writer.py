"""Measuring many masks on a SQLite file while another connection commits (a worker, a training run).

Not pytest-django's in-memory database: a real SQLite file under tmp_path, set up and measured in a
subprocess with the project's settings (WAL, busy timeout, IMMEDIATE transactions), while a third process
commits a small write every 20 ms (as a worker's or a training run's heartbeat does). A selection read
through a cursor that stays open pins its snapshot; once the other process has committed, that connection
cannot write and the measurement fails with "database is locked" (it did, before measure_selection read
its masks 200 at a time).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
N = 210  # more masks than one fetch of 200, so a cursor over the selection would still be open

WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
while True:
    db.execute("UPDATE segmentation_galaxy SET redshift = redshift + 0 WHERE name = 'w0'")
    time.sleep(0.02)
"""

SCRIPT = f"""
WRITER = {WRITER!r}
N = {N}
import json, sqlite3, sys
import django
django.setup()
import numpy as np
from segmentation import measurements, services

producer = services.producer_get_or_create(kind="model", name="m", version="1")
for i in range(N):
    g, _ = services.galaxy_upsert(name=f"w{{i}}", defaults={{"ra": 10.0 + i / 10, "dec": 1.0, "redshift": 0.05}})
    image, _ = services.image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((48, 48, 3), np.uint8),
                                    pixel_scale=0.4)
    bar = np.zeros((48, 48), np.int64)
    bar[22:26, 10 + i % 8:38 - i % 8] = 1
    services.mask_store(galaxy=g, image=image, structure="bar", producer=producer, state="marked",
                        numerators=bar, denominator=1)

# another process commits every 20 ms while the masks are measured (as a worker's heartbeat does)
import subprocess, time
writer = subprocess.Popen([sys.executable, "-c", WRITER, sys.argv[1]])
time.sleep(0.5)
measured = []

def another_process_writes(n):
    measured.append(n)

try:
    summary = measurements.measure_selection(source="model", progress=another_process_writes)
finally:
    writer.kill()
print(json.dumps({{"measured": summary.measured, "failures": summary.failures, "progress": len(measured)}}))
"""


def test_measuring_while_another_connection_commits(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "MEDIA_ROOT": str(tmp_path / "media"),
           "DJANGO_SETTINGS_MODULE": "evalsite.settings", "PYTHONPATH": str(ROOT)}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path / "db.sqlite3")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"measured": N, "failures": [], "progress": N}
