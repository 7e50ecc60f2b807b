"""Fixtures of the tiers that run Django (integration and browser); their conftests import them.

Redis: tests use a dedicated database number (EVALSITE_TEST_REDIS_DB, default 13) of the Redis at
REDIS_URL. Before the first flush the database must be empty or carry our marker key, so a user's data
in that database is never wiped; otherwise the Redis tests fail with an explanation.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_MARKER = "evalsite:test-database"


def _test_redis_url() -> str:
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    db = os.environ.get("EVALSITE_TEST_REDIS_DB", "13")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


TEST_REDIS_URL = _test_redis_url()


@pytest.fixture(autouse=True)
def _jobs_use_test_redis(settings):
    """Whatever a test enqueues goes to the test database, never to the user's."""
    settings.REDIS_URL = TEST_REDIS_URL
    settings.RQ_QUEUES = {name: {**conf, "URL": TEST_REDIS_URL} for name, conf in settings.RQ_QUEUES.items()}


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Tests log people in often; the production hasher costs about a second per login here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def _redis_session():
    import redis

    conn = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at {TEST_REDIS_URL} does not answer ({exc}); ./tasks.sh test starts one")
    if conn.dbsize() and not conn.exists(REDIS_MARKER):
        pytest.fail(
            f"Redis database {TEST_REDIS_URL} holds keys that are not the tests'; refusing to flush it. "
            "Set EVALSITE_TEST_REDIS_DB to an unused database number."
        )
    return conn


@pytest.fixture
def redis_conn(_redis_session):
    """A clean, dedicated Redis database; flushed before and after the test."""
    _redis_session.flushdb()
    _redis_session.set(REDIS_MARKER, "1")
    yield _redis_session
    _redis_session.flushdb()
    _redis_session.set(REDIS_MARKER, "1")



# --- the suite's named people -----------------------------------------------------------------------------
# admin: superuser; viewer: staff who may view galaxies, images and masks; rater_a, rater_b: two plain
# users who will join studies; stranger: a plain user with no part in anything. Password: PASSWORD.
@pytest.fixture
def admin(db):
    from tests.factories import AdminFactory
    return AdminFactory(username="admin")


@pytest.fixture
def viewer(db):
    from django.contrib.auth.models import Permission

    from tests.factories import StaffFactory
    user = StaffFactory(username="viewer")
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="segmentation", codename__in=["view_galaxy", "view_image", "view_mask"]))
    return user


@pytest.fixture
def rater_a(db):
    from tests.factories import UserFactory
    return UserFactory(username="rater_a")


@pytest.fixture
def rater_b(db):
    from tests.factories import UserFactory
    return UserFactory(username="rater_b")


@pytest.fixture
def stranger(db):
    from tests.factories import UserFactory
    return UserFactory(username="stranger")


@pytest.fixture
def admin_client(client, admin):
    """The test client, signed in as ``admin``."""
    client.force_login(admin)
    return client


# The fixtures the integration and browser conftests take with ``from django_support import *``.
__all__ = ["TEST_REDIS_URL", "_jobs_use_test_redis", "_media_in_tmp", "_fast_passwords", "_redis_session",
           "redis_conn", "admin", "viewer", "rater_a", "rater_b", "stranger", "admin_client"]
