"""A throw-away Django environment for benchmarks: SQLite file (WAL, from the settings), media folder and
a dedicated Redis database, migrated.

    from _django_env import setup_env
    env = setup_env(Path(tempfile.mkdtemp()), redis_db=11)   # before importing any model
    subprocess.Popen([...manage.py rqworker...], env=env)     # workers see the same database and media

The Redis database is flushed only when it is empty or carries this helper's marker key, so a database
someone else uses is never wiped (db 0, the machine's default, is refused outright).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER_KEY = "evalsite:bench-env-marker"


def claim_redis_db(url: str) -> None:
    """Empty the Redis database at ``url`` if it is ours (empty or marked), then mark it; else exit."""
    import redis

    conn = redis.Redis.from_url(url)
    db = conn.connection_pool.connection_kwargs.get("db", 0)
    if int(db) == 0:
        raise SystemExit(f"refusing to use Redis db 0 for a benchmark ({url})")
    size = conn.dbsize()
    if size and not conn.exists(MARKER_KEY):
        raise SystemExit(f"Redis {url} holds {size} keys without the bench marker: not ours, not flushing it")
    if size:
        conn.flushdb()
    conn.set(MARKER_KEY, "bench/_django_env.py")


def setup_env(tmp: Path, *, redis_db: int = 11, database_url: str | None = None) -> dict[str, str]:
    """Point this process at a new SQLite file + media folder under ``tmp`` and Redis db ``redis_db``,
    run django.setup() and migrate. Returns the environment for subprocesses (workers, commands).
    ``database_url``: another (throw-away) database instead of the SQLite file."""
    tmp.mkdir(parents=True, exist_ok=True)
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    claim_redis_db(redis_url)
    overrides = {
        # settings add WAL + a busy timeout; IMMEDIATE makes every transaction take the write lock at BEGIN,
        # else two workers' read-then-write transactions fail at once with "database is locked"
        # (a lock upgrade in WAL mode does not wait for the busy timeout)
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.sqlite3'}?transaction_mode=IMMEDIATE",
        "MEDIA_ROOT": str(tmp / "media"),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
        "EVALSITE_MEDIA_STORAGE": "filesystem",
    }
    os.environ.update(overrides)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {**os.environ, **overrides}


def release_redis_db(redis_db: int = 11) -> None:
    """Empty our Redis database again (only if it carries the marker)."""
    import redis

    conn = redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}")
    if conn.exists(MARKER_KEY):
        conn.flushdb()


def make_survey(tmp: Path, *, galaxies: int, seed: int, size: int) -> None:
    """Make and import a synthetic survey of the default style mix under ``tmp`` (``make_synthetic --import``,
    as the demo does) and print how long it took."""
    import time

    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("make_synthetic", n=galaxies, seed=seed, size=size, out=str(tmp / "survey"), import_=True)
    print(f"survey: {galaxies} galaxies of {size} px in {time.perf_counter() - t0:.0f} s", flush=True)
