"""Unit tier: the Django-free core (evalcore). ``./tasks.sh test`` runs it without pytest-django; at the end
of such a run, any Django or app module that the core pulled in at run time fails the session."""
from __future__ import annotations

import sys

import pytest

OUTSIDE_THE_CORE = ("django", "segmentation", "ratings", "evalsite", "rq", "django_rq")


def loaded_outside_the_core() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in OUTSIDE_THE_CORE)


def pytest_sessionfinish(session, exitstatus):
    if session.config.pluginmanager.has_plugin("django"):
        return  # run together with the Django tiers (plain pytest): pytest-django loaded Django itself
    leaked = loaded_outside_the_core()
    if leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"The unit tier loaded modules outside the core: {', '.join(leaked[:10])}", red=True)
