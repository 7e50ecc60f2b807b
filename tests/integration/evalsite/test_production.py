"""The production profile, for real: check --deploy is clean, gunicorn serves pages and static files."""
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def production_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "evalsite.settings", "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "EVALSITE_HTTPS": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}", "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"), "EVALSITE_VAR_DIR": str(tmp_path),
    })
    return env


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_deploy_is_clean(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_off_without_secret_refuses_to_start(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage(env, "check")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_gunicorn_serves_pages_and_static_files(tmp_path):
    env = production_env(tmp_path)
    for args in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "evalsite.wsgi:application", "--bind",
                               f"127.0.0.1:{port}", "--workers", "2"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        https = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy in front would send
        deadline = time.monotonic() + 120
        while True:
            try:
                page = requests.get(f"{base}/accounts/login/", timeout=30, headers=https)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert page.status_code == 200 and "Log in" in page.text
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "max-age=" in page.headers["Strict-Transport-Security"]
        assert "Secure" in page.headers.get("Set-Cookie", "Secure")
        css = requests.get(f"{base}/static/ratings/rate.css", timeout=30, headers=https)
        assert css.status_code == 200 and "--accent" in css.text
        assert requests.get(f"{base}/static/nope.css", timeout=30, headers=https).status_code == 404
        plain = requests.get(f"{base}/rate/", timeout=30, allow_redirects=False)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        rate = requests.get(f"{base}/rate/", timeout=30, allow_redirects=False, headers=https)
        assert rate.status_code == 302 and "/accounts/login/" in rate.headers["Location"]
    finally:
        server.terminate()
        server.wait(timeout=30)
