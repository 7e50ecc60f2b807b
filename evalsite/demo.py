"""First-start set-up for ``./tasks.sh run``: accounts, demo data and demo jobs on an empty site.

Each step checks what is already there, so running it on every start is safe.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands

LOGINS_FILE = "demo-logins.json"


def _logins_path() -> Path:
    return Path(settings.VAR_DIR) / LOGINS_FILE


def ensure_accounts() -> dict[str, str]:
    """Create the demo admin once, with a random password kept in var/ (shown at each start)."""
    path = _logins_path()
    logins = json.loads(path.read_text()) if path.exists() else {}
    User = get_user_model()
    if "admin" not in logins or not User.objects.filter(username="admin").exists():
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        logins["admin"] = password
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(logins, indent=2))
        path.chmod(0o600)
    return logins


def ensure_demo_data(stdout) -> None:
    from segmentation.models import Galaxy

    if Galaxy.objects.exists():
        return
    if "make_synthetic" in get_commands():
        stdout.write("Creating the demo survey (synthetic galaxies)...")
        out = Path(settings.VAR_DIR) / "demo-survey"
        call_command("make_synthetic", n=200, seed=1, size=256, out=str(out), import_=True)
    else:
        stdout.write(
            "The database has no galaxies. Import some with:\n"
            "  .venv/bin/python manage.py import_gz3d PATH/TO/gz3d_*.fits.gz\n"
            "  .venv/bin/python manage.py import_images DIR --catalogue FILE.csv"
        )


def print_logins(stdout, url: str) -> None:
    logins = json.loads(_logins_path().read_text()) if _logins_path().exists() else {}
    stdout.write("")
    stdout.write(f"  Site:   {url}/")
    stdout.write(f"  Admin:  {url}/admin/")
    stdout.write(f"  Jobs:   {url}/admin/rq/")
    for user, password in logins.items():
        stdout.write(f"  Login:  {user} / {password}")
    stdout.write(f"  (logins are kept in {_logins_path()})")
