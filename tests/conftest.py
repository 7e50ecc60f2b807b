"""Fixtures every tier shares; nothing here touches Django, so the unit tier runs without it.

Tiers follow the folder: tests/unit (the Django-free core, run with ``-p no:django``), tests/integration
(database, Redis, files, commands), tests/browser (real Chromium). The Django fixtures of the last two
live in ``tests/django_support.py``. Mark heavy tests ``slow``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
TIERS = ("unit", "integration", "browser")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def shared_fixtures():
    """The read-only fixtures in ../shared/fixtures; skipped with a reason where that folder is absent."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{FIXTURES} is missing in CI")
        pytest.skip(f"{FIXTURES} is missing (a user's clone without ../shared)")
    return FIXTURES


@pytest.fixture(scope="session")
def sparcfire_sdss():
    """The eleven real SDSS galaxies with SpArcFiRe's own output (../shared/fixtures/sparcfire-sdss), read in
    place; skipped with a reason naming the folder where it is absent."""
    folder = FIXTURES / "sparcfire-sdss"
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{folder} is missing in CI")
        pytest.skip(f"{folder} is missing (a user's clone without ../shared)")
    return folder
