"""Load: N concurrent raters against gunicorn (production profile) and PostgreSQL, on loopback only.

    .venv/bin/python bench/load_raters.py                      # 50 raters for 120 s
    .venv/bin/python bench/load_raters.py --seconds 10 --raters 20
    .venv/bin/python bench/load_raters.py --database-url postgres://postgres@127.0.0.1:5432/evalsite_load

What it does: creates the database named in ``--database-url`` (refusing one that exists), migrates it,
builds an open three-source study with every rater on every item (panels pre-rendered, raters signed in
with sessions made in the database: log-in hashing is not what is measured), starts gunicorn with
DEBUG off and Redis pointed at a closed port (rating pages must not need Redis), and runs one thread per
rater: open the study, follow to the next item, fetch its pictures, wait ``--think`` s, submit. Prints
request count, throughput, latency percentiles (ms) and errors; then counts the stored ratings and
compares them with the submits the server acknowledged (302). Stops gunicorn and drops the database.
Exit status 0 when there were no errors and the counts agree.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ratings.services.studies import (
    rater_consent,
    rater_join,
    rater_profile,
    study_open,
    study_render_panels,
    study_set_items,
)
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "localhost")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/evalsite_load"
SETUP_PASSWORD = "load-test-not-a-secret"  # never used to log in: sessions are made directly


# --- the site's data (runs inside Django, in a subprocess with the load environment) ----------------------
def setup_site(n_items: int, n_raters: int) -> dict:
    import numpy as np
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from ratings.models import Rater, Study

    rng = np.random.default_rng(1)
    producers = [producer_get_or_create(kind=k, name=f"load {k}", version="1")
                 for k in ("volunteers", "model", "sparcfire")]
    galaxies = []
    y, x = np.mgrid[:64, :64] - 31.5
    r, theta = np.hypot(x, y) + 1e-6, np.arctan2(y, x)
    for i in range(n_items):
        arms = np.cos(2 * (theta - np.log(r) / np.tan(np.radians(15 + i % 20))))
        light = np.exp(-r / 12) * (1 + 0.8 * np.clip(arms, 0, None)) + rng.normal(0, 0.01, r.shape)
        grey = (np.clip(light / light.max(), 0, 1) * 255).astype(np.uint8)
        g, _ = galaxy_upsert(name=f"load{i}", defaults={"ra": 10.0 + i / 10, "dec": 1.0})
        image, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.repeat(grey[..., None], 3, axis=2))
        for j, p in enumerate(producers):
            counts = ((arms > 0.3 + 0.2 * j) & (r < 28)).astype(np.int64) * (1 + j)
            mask_store(galaxy=g, image=image, structure="spiral", producer=p, state="marked",
                       numerators=counts, denominator=3)
        galaxies.append(g)
    study = Study.objects.create(
        name="Load study", structures=["spiral"], primary_question="Which source marks spiral arms best?",
        planned_items=n_items, planned_raters=n_raters, raters_per_item=n_raters, stopping_rule="load test",
        seed=1, repeat_rate=0, attention_rate=0, practice_items=0)
    study.sources.set(producers)
    study_set_items(study=study, galaxies=galaxies)
    study_open(study=study)
    study_render_panels(study=study)

    User = get_user_model()
    password = make_password(SETUP_PASSWORD)  # hashed once for all users
    sessions = []
    for k in range(n_raters):
        user = User.objects.create(username=f"rater{k:03d}", password=password)
        rater = rater_join(study=study, user=user)
        rater_consent(rater=rater)
        rater_profile(rater=rater, career_stage="postdoc", experience="expert", helped_build=False)
        Rater.objects.filter(pk=rater.pk).update(practice_done_at=timezone.now())
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return {"study": study.pk, "sessions": sessions}


def count_stored(study_id: int) -> dict:
    from ratings.models import Answer, Assignment

    return {"submitted": Assignment.objects.filter(study_id=study_id, submitted_at__isnull=False).count(),
            "answers": Answer.objects.filter(assignment__study_id=study_id).count()}


# --- the database -----------------------------------------------------------------------------------------
def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to load {host!r}: this benchmark only ever targets 127.0.0.1")


def _admin_dsn(database_url: str) -> tuple[str, str]:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"database name {name!r}: use lower-case letters, digits and _")
    return parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1), name


def create_database(database_url: str) -> None:
    import psycopg

    dsn, name = _admin_dsn(database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise SystemExit(f"database {name} exists; this benchmark only uses a database it creates "
                             "(drop it yourself or choose another --database-url)")
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str) -> None:
    import psycopg

    dsn, name = _admin_dsn(database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the raters -------------------------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # s, every request
    errors: list[str] = field(default_factory=list)
    acknowledged: int = 0
    finished_raters: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None = None):
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)


PNG_SRC = re.compile(r'src="(/rate/a/[^"]+\.png)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def rater_loop(base: str, study_id: int, session_key: str, deadline: float, think: float, tally: Tally,
               seed: int) -> None:
    import requests

    rng = random.Random(seed)
    http = requests.Session()
    http.cookies.set("sessionid", session_key, domain="127.0.0.1", path="/")

    def request(method: str, url: str, expect: tuple[int, ...], **kwargs):
        t0 = time.perf_counter()
        try:
            response = http.request(method, base + url, allow_redirects=False, timeout=120, **kwargs)
        except requests.RequestException as exc:
            tally.add(time.perf_counter() - t0, f"{method} {url}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - t0
        if response.status_code not in expect:
            tally.add(elapsed, f"{method} {url}: HTTP {response.status_code}")
            return None
        tally.add(elapsed)
        return response

    while time.monotonic() < deadline:
        entry = request("GET", f"/rate/s/{study_id}/", (200, 302))
        if entry is None:
            return
        location = entry.headers.get("Location", "")
        if entry.status_code == 200 or not location.startswith("/rate/a/"):
            with tally.lock:
                tally.finished_raters += 1  # every item rated: the end of this rater's study
            return
        page = request("GET", location, (200,))
        if page is None:
            return
        for src in PNG_SRC.findall(page.text):
            if request("GET", src, (200,)) is None:
                return
        token = CSRF.search(page.text)
        if token is None:
            tally.add(0.0, f"GET {location}: no CSRF token in the form")
            return
        n_panels = len(set(re.findall(r'name="rank_(\d+)"', page.text)))
        ranks = list(range(1, n_panels + 1))
        rng.shuffle(ranks)
        form = {"csrfmiddlewaretoken": token.group(1), "seconds": f"{think:.1f}", "comment": ""}
        qualities = sorted({int(v) for v in re.findall(r'name="quality_0" value="(\d+)"', page.text)})
        if not n_panels or not qualities:
            tally.add(0.0, f"GET {location}: the form has no panels to rank")
            return
        for i, rank in enumerate(ranks):
            form[f"rank_{i}"], form[f"quality_{i}"] = rank, rng.choice(qualities)
        if think:
            time.sleep(think * rng.uniform(0.5, 1.5))
        if time.monotonic() >= deadline:
            return  # never leave a submit in flight when the clock stops: acknowledged must be complete
        posted = request("POST", location, (302,), data=form, headers={"Referer": base + location})
        if posted is None:
            return
        with tally.lock:
            tally.acknowledged += 1


# --- the run ----------------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: list[str]
    acknowledged: int
    stored: int
    answers: int
    finished_raters: int

    @property
    def ok(self) -> bool:
        return not self.errors and self.stored == self.acknowledged and self.answers == 3 * self.stored

    def report(self) -> str:
        lines = [
            f"requests           {self.requests} in {self.seconds:.1f} s ({self.requests / self.seconds:.1f}/s)",
            f"latency ms         p50 {self.p50_ms:.0f}  p95 {self.p95_ms:.0f}  p99 {self.p99_ms:.0f}  "
            f"max {self.max_ms:.0f}",
            f"errors             {len(self.errors)}",
            f"submits acked      {self.acknowledged}",
            f"ratings stored     {self.stored} items, {self.answers} panel answers",
            f"raters finished    {self.finished_raters} (rated every item before the end)",
            f"verdict            {'OK' if self.ok else 'FAILED'}",
        ]
        lines += [f"  error: {e}" for e in self.errors[:20]]
        return "\n".join(lines)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


def _django(env: dict, *args: str, timeout: float = 900) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def run_load(*, seconds: float = 120, raters: int = 50, items: int = 60, think: float = 1.0,
             database_url: str = DEFAULT_DATABASE_URL, workers: int = 3, threads: int = 8,
             keep_alive: int = 30, log=print) -> LoadResult:
    """Run the whole benchmark (database made and dropped here); ``seconds`` of load by ``raters`` threads."""
    _check_loopback(database_url)
    create_database(database_url)
    work = Path(tempfile.mkdtemp(prefix="evalsite-load-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "evalsite.settings", "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1", "DATABASE_URL": database_url, "DATABASE_CONN_MAX_AGE": "60",
        "EVALSITE_VAR_DIR": str(work), "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
        "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    })
    server = None
    try:
        log(f"setting up {database_url} ({items} items, {raters} raters)...")
        _django(env, "manage.py", "migrate", "--noinput")
        _django(env, "manage.py", "createcachetable")
        _django(env, "manage.py", "collectstatic", "--noinput")
        data = json.loads(_django(env, str(Path(__file__).resolve()), "_setup", str(items), str(raters))
                          .strip().splitlines()[-1])
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "evalsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
             "--timeout", "120", "--log-level", "warning",
             # longer than any pause of a rater: with gunicorn's default of 2 s the server may close an idle
             # connection just as the client reuses it for a POST, which the client cannot safely retry
             "--keep-alive", str(keep_alive)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "gunicorn.log", "w"))
        base = f"http://127.0.0.1:{port}"
        _wait_for(base, server)
        _warm_up(base, workers * threads * 2)
        log(f"gunicorn on {base} ({workers} workers x {threads} threads); {raters} raters for {seconds:g} s")
        tally = Tally()
        started = time.monotonic()
        deadline = started + seconds
        pool = [threading.Thread(target=rater_loop, args=(base, data["study"], key, deadline, think, tally, n),
                                 daemon=True) for n, key in enumerate(data["sessions"])]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.monotonic() - started
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        server = None
        stored = json.loads(_django(env, str(Path(__file__).resolve()), "_count", str(data["study"]))
                            .strip().splitlines()[-1])
        lat = tally.latencies
        return LoadResult(
            requests=len(lat), seconds=elapsed, p50_ms=1000 * _percentile(lat, 50),
            p95_ms=1000 * _percentile(lat, 95), p99_ms=1000 * _percentile(lat, 99),
            max_ms=1000 * max(lat, default=float("nan")), errors=tally.errors, acknowledged=tally.acknowledged,
            stored=stored["submitted"], answers=stored["answers"], finished_raters=tally.finished_raters)
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
        drop_database(database_url)


def _warm_up(base: str, n: int) -> None:
    """Concurrent requests before the clock starts, so every gunicorn worker has imported the views."""
    import requests

    def hit():
        try:
            requests.get(base + "/accounts/login/", timeout=120)
        except requests.RequestException:
            pass  # only warming: the measured run reports errors

    pool = [threading.Thread(target=hit) for _ in range(n)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _wait_for(base: str, server: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 300
    while True:
        try:
            # the socket accepts before the workers have imported the site: allow a slow first answer
            requests.get(base + "/accounts/login/", timeout=60)
            return
        except (requests.ConnectionError, requests.Timeout):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start (see its log in the work folder)") from None
            time.sleep(0.2)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] in ("_setup", "_count"):
        import django

        sys.path.insert(0, str(ROOT))
        django.setup()
        if sys.argv[1] == "_setup":
            print(json.dumps(setup_site(int(sys.argv[2]), int(sys.argv[3]))))
        else:
            print(json.dumps(count_stored(int(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="how long the raters rate (s)")
    parser.add_argument("--raters", type=int, default=50, help="concurrent raters (one thread each)")
    parser.add_argument("--items", type=int, default=60, help="items in the study; every rater gets all")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause before each submit (s)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help="PostgreSQL on 127.0.0.1; the database is created and dropped by this run")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--keep-alive", type=int, default=30,
                        help="gunicorn's idle keep-alive (s); 2 (its default) shows the reuse race")
    args = parser.parse_args(argv)
    result = run_load(seconds=args.seconds, raters=args.raters, items=args.items, think=args.think,
                      database_url=args.database_url, workers=args.workers, threads=args.threads,
                      keep_alive=args.keep_alive)
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
