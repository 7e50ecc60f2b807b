"""A separate site for fault tests with real worker processes: its own database (a SQLite file, or a new
PostgreSQL database on DATABASE_URL's server) and media, the tests' Redis database, Python run in
subprocesses with that environment, ``manage.py rqworker`` workers, and a kill in the middle of a chunk.

The workers must see the rows a test makes, so these tests do not use pytest-django's test database;
progress is watched from outside the workers (sqlite3 / psycopg; WAL lets a reader look while a worker
writes).
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
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django_support import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
BASE_URL = os.environ.get("DATABASE_URL", "")


def script(body: str, **values) -> str:
    """Python for ``run_python``: Django set up, ``values`` bound as names, then ``body``."""
    prelude = "import json, django\ndjango.setup()\n"
    for name, value in values.items():
        prelude += f"{name} = {value!r}\n"
    return prelude + textwrap.dedent(body)


def run_python(env, code: str) -> dict:
    """Run ``code`` in a subprocess of the site; its last line of output, read as JSON."""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker(env, queue: str = "generation") -> subprocess.Popen:
    """A burst worker of the site on ``queue``, as production runs it (SimpleWorker)."""
    return subprocess.Popen([sys.executable, "manage.py", "rqworker", "--worker-class", "rq.worker.SimpleWorker",
                             queue, "--burst"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextmanager
def separate_site(tmp_path: Path, backend: str):
    """Yield (environment, count) of a migrated site; ``count(table)`` counts a table's rows from outside.
    ``backend`` "postgresql" is skipped unless the tests run on PostgreSQL; its database is dropped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "evalsite.settings", "MEDIA_ROOT": str(tmp_path / "media"),
                "EVALSITE_VAR_DIR": str(tmp_path), "REDIS_URL": TEST_REDIS_URL, "OMP_NUM_THREADS": "1",
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    drop = None
    if backend == "sqlite":
        db_path = tmp_path / "site.sqlite3"
        env["DATABASE_URL"] = f"sqlite:///{db_path}"

        def count(table: str) -> int:
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
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

        def count(table: str) -> int:
            with psycopg.connect(env["DATABASE_URL"]) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    try:
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=600)
        assert migrate.returncode == 0, migrate.stderr
        yield env, count
    finally:
        if drop:
            drop()


def kill_mid_chunk(env, stored, at_least: int, below: int) -> int:
    """Start a worker, SIGKILL it once ``stored()`` reaches ``at_least``, and return ``stored()`` after the
    kill, checked to be below ``below`` (the kill landed in the middle of the chunk)."""
    proc = worker(env)
    try:
        deadline = time.monotonic() + 300
        while (n := stored()) < at_least:
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
    killed_at = stored()
    assert at_least <= n <= killed_at < below, "the kill must land in the middle of the chunk"
    return killed_at
