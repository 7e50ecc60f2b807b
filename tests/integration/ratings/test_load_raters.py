"""The load benchmark, shortened to fit CI: 20 raters for 10 s against gunicorn and PostgreSQL on loopback.

bench/load_raters.py creates and drops its own database (a name unique to this run) on the PostgreSQL at
127.0.0.1:5432; the full run (50 raters, 120 s) is ``.venv/bin/python bench/load_raters.py``.
"""
from __future__ import annotations

import os

import pytest

from bench.load_raters import run_load

pytestmark = pytest.mark.slow
PG = "postgres://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres():
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(f"{PG.replace('postgres://', 'postgresql://')}/postgres", connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG} does not answer in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG} does not answer: {exc}")
    return f"{PG}/evalsite_load_test_{os.getpid()}"


def test_twenty_raters_for_ten_seconds_lose_nothing(postgres):
    result = run_load(seconds=10, raters=20, items=12, think=0.5, database_url=postgres, workers=2, threads=8,
                      log=lambda *_: None)
    print(result.report())
    assert result.errors == []
    assert result.acknowledged > 0, "no submit got through in 10 s"
    assert result.stored == result.acknowledged  # every acknowledged submit is stored, nothing more
    assert result.answers == 3 * result.stored  # three panels per item, none missing
