"""Rating latency under load: N simulated raters on loopback, each rating as fast as the server answers.

Sets up a private SQLite database (WAL) and media folder in a temporary directory, fills it through the
real services (galaxies, images, three sources' masks, an open study with one design slot per rater,
raters who consented and practised), starts gunicorn on 127.0.0.1, and runs N threads with ``requests``:
each opens its next item (GET) and submits it (POST, with the CSRF token of the page) until its sequence is
done. Latency is the server's own figure (the ``Server-Timing`` header the rating views set); the client's
round trip is printed beside it. At the end every answer is counted: exactly one per (item, panel),
nothing lost, nothing duplicated.

The baseline, in the same process: one rater alone on the same server. The ratio p95(N raters) / p95(alone)
shows what the load costs; the absolute p95 is the median over ``--runs`` runs.

    .venv/bin/python bench/rating_latency.py                 # 20 raters, 3 runs
    .venv/bin/python bench/rating_latency.py --raters 5 --runs 1 --galaxies 20
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ratings.services.studies import rater_consent, rater_join, rater_profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure(tmp: Path, debug: bool) -> dict:
    """Environment of a private site in ``tmp``: production settings (DEBUG off, collected static files)
    unless ``debug``."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}", "EVALSITE_VAR_DIR": str(tmp),
           "MEDIA_ROOT": str(tmp / "media"), "STATIC_ROOT": str(tmp / "static"),
           "DEBUG": "true" if debug else "false", "DJANGO_SETTINGS_MODULE": "evalsite.settings"}
    if not debug:
        env.update({"SECRET_KEY": secrets.token_urlsafe(40), "ALLOWED_HOSTS": "127.0.0.1"})
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not debug:
        call_command("collectstatic", interactive=False, verbosity=0)
    return env


def build(n_raters: int, n_galaxies: int, raters_per_item: int, tag: str) -> tuple[int, list[str]]:
    """An open study and ``n_raters`` ready raters; returns the study id and each rater's session key."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from ratings.models import Rater
    from tests.factories.studies import spiral_study as build_study

    study = build_study(name=f"bench {tag}", n_galaxies=n_galaxies, planned_raters=n_raters,
                        raters_per_item=raters_per_item, practice_items=0, prefix=f"b{tag}-", reference=False)
    User = get_user_model()
    sessions = []
    for i in range(n_raters):
        user = User.objects.create(username=f"bench-{tag}-{i}")
        rater = rater_join(study=study, user=user)
        rater_consent(rater=rater)
        rater_profile(rater=rater, career_stage="postdoc", experience="some", helped_build=False)
        Rater.objects.filter(pk=rater.pk).update(practice_done_at=timezone.now())
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return study.pk, sessions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, workers: int, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    with open(log, "ab") as out:  # not our stdout: the server must not hold the caller's pipe open
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "evalsite.wsgi", "-b", f"127.0.0.1:{port}", "-w",
             str(workers), *(["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]),
             "--backlog", "256", "--log-level", "warning"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/accounts/login/", timeout=10)
            return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"gunicorn did not answer within 120 s; see {log}")


def server_ms(response) -> float:
    match = re.search(r"view;dur=([\d.]+)", response.headers.get("Server-Timing", ""))
    if match is None:
        raise RuntimeError(f"{response.url}: no Server-Timing header (status {response.status_code})")
    return float(match.group(1))


def rater_loop(url: str, study_id: int, session_key: str, out: dict, errors: list):
    import requests

    http = requests.Session()
    http.cookies.set("sessionid", session_key, domain="127.0.0.1")
    entry = f"{url}/rate/s/{study_id}/"
    try:
        while True:
            r = http.get(entry, allow_redirects=False)
            if r.status_code != 302 or "/rate/a/" not in r.headers["Location"]:
                break  # sequence done: the blinding check or the thank-you page
            item_url = url + r.headers["Location"]
            t0 = time.perf_counter()
            page = http.get(item_url, allow_redirects=False)
            out["get_client"].append((time.perf_counter() - t0) * 1000)
            out["get_server"].append(server_ms(page))
            html = page.text
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
            n = int(re.search(r'data-panels="(\d+)"', html).group(1))
            data = {"csrfmiddlewaretoken": csrf, "seconds": "3.0"}
            for i in range(n):
                data[f"rank_{i}"], data[f"quality_{i}"] = str(i + 1), str(3 - i)
            t0 = time.perf_counter()
            posted = http.post(item_url, data=data, headers={"Referer": item_url, "Origin": url},
                               allow_redirects=False)
            out["post_client"].append((time.perf_counter() - t0) * 1000)
            if posted.status_code != 302:
                errors.append(f"submit {posted.status_code}: {posted.text[:300]}")
                break
            out["post_server"].append(server_ms(posted))
            out["submitted"] += 1
    except Exception as exc:  # report, never hide: the count check then fails too
        errors.append(repr(exc))


def run(url: str, study_id: int, sessions: list[str]) -> tuple[dict, list[str]]:
    results = [{"get_client": [], "get_server": [], "post_client": [], "post_server": [], "submitted": 0}
               for _ in sessions]
    errors: list[str] = []
    threads = [threading.Thread(target=rater_loop, args=(url, study_id, key, res, errors))
               for key, res in zip(sessions, results, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = {k: [x for r in results for x in r[k]] for k in ("get_client", "get_server", "post_client",
                                                              "post_server")}
    merged["submitted"] = sum(r["submitted"] for r in results)
    return merged, errors


def count_check(study_id: int) -> dict:
    from django.db.models import Count

    from ratings.models import Answer, Assignment

    assignments = Assignment.objects.filter(study_id=study_id)
    expected = sum(len(a.panel_order) for a in assignments)
    answers = Answer.objects.filter(assignment__study_id=study_id)
    dupes = answers.values("assignment", "candidate").annotate(n=Count("id")).filter(n__gt=1).count()
    return {"assignments": assignments.count(), "unsubmitted": assignments.filter(submitted_at__isnull=True).count(),
            "answers": answers.count(), "expected": expected, "duplicates": dupes}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else float("nan"))


def one_run(url: str, n_raters: int, galaxies: int, raters_per_item: int, tag: str) -> dict:
    study_id, sessions = build(n_raters, galaxies, raters_per_item, tag)
    t0 = time.perf_counter()
    merged, errors = run(url, study_id, sessions)
    wall = time.perf_counter() - t0
    counts = count_check(study_id)
    ok = (not errors and counts["answers"] == counts["expected"] and counts["duplicates"] == 0
          and counts["unsubmitted"] == 0 and merged["submitted"] == counts["assignments"])
    return {"merged": merged, "errors": errors, "counts": counts, "ok": ok, "wall": wall}


def describe(label: str, r: dict) -> str:
    m = r["merged"]
    return (f"{label}: {m['submitted']} items in {r['wall']:.1f} s; server p50/p95 next-item page "
            f"{statistics.median(m['get_server']):.1f}/{p95(m['get_server']):.1f} ms, submit "
            f"{statistics.median(m['post_server']):.1f}/{p95(m['post_server']):.1f} ms; client round-trip p95 "
            f"{p95(m['get_client']):.1f} / {p95(m['post_client']):.1f} ms; answers {r['counts']['answers']} of "
            f"{r['counts']['expected']}, duplicates {r['counts']['duplicates']}, unsubmitted "
            f"{r['counts']['unsubmitted']}, errors {len(r['errors'])} -> {'OK' if r['ok'] else 'FAILED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--galaxies", type=int, default=60, help="items per study (spiral only)")
    parser.add_argument("--raters-per-item", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=1,
                        help="gunicorn threads per process; 1 = sync workers, so a view never waits for the GIL")
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--debug", action="store_true", help="DEBUG on (slower); default: production settings")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rating-bench-"))
    env = configure(tmp, args.debug)
    proc, url = start_server(env, args.workers, args.threads, tmp / "gunicorn.log")
    try:
        for _ in range(2 * args.workers):  # every worker imports Django before the clock starts
            __import__("requests").get(f"{url}/accounts/login/", timeout=30)
        print(f"gunicorn {args.workers} workers x {args.threads} threads on {url}, DEBUG {args.debug}, "
              f"SQLite WAL in {tmp}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        baseline = one_run(url, 1, max(4, args.galaxies // 4), 1, "base")
        print(describe("baseline, 1 rater alone", baseline))
        runs = []
        for i in range(args.runs):
            r = one_run(url, args.raters, args.galaxies, min(args.raters_per_item, args.raters), f"r{i}")
            print(describe(f"run {i + 1}, {args.raters} raters", r))
            for e in r["errors"][:5]:
                print("   error:", e)
            runs.append(r)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    get95 = statistics.median(p95(r["merged"]["get_server"]) for r in runs)
    post95 = statistics.median(p95(r["merged"]["post_server"]) for r in runs)
    base_get, base_post = p95(baseline["merged"]["get_server"]), p95(baseline["merged"]["post_server"])
    print(f"median over {len(runs)} runs of the server-side p95: next-item page {get95:.1f} ms "
          f"(x{get95 / base_get:.2f} of 1 rater alone), submit {post95:.1f} ms (x{post95 / base_post:.2f}); "
          f"target {args.target_ms:.0f} ms")
    ok = all(r["ok"] for r in runs) and baseline["ok"]
    print("count check:", "no answer lost or duplicated" if ok else "FAILED")
    return 0 if ok and get95 <= args.target_ms and post95 <= args.target_ms else 1


if __name__ == "__main__":
    sys.exit(main())
