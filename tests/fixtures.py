"""Fixtures the Django suites share (tests/server, tests/api, tests/cli), defined once here.

Each suite's conftest imports the ones it uses, which makes them that folder's fixtures: the two autouse
ones then apply to that suite only, not to the Django-free suites (tests/bundle, tests/evaluation, …).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_user, two_challenges


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Real hashing costs ~0.5 s per user: tests that make users would spend minutes on it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_throttling(request, monkeypatch) -> None:
    """Rate limits count per user id across tests of one process (ids repeat); reset them, raised high.
    (DRF reads the rates once, at import: patch the class attribute, not the settings.)

    Throttling itself is tested in tests/api/test_throttling.py, with its own rates."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "10000/min", "submit": "10000/min"})
    clear_throttle_counts(request)


DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}


def clear_throttle_counts(request) -> None:
    """Empty the cache (throttle and allauth rate-limit counts). It lives in the database, so only a test
    that may use the database can have counts to clear; a rolled-back test's counts vanish anyway, a
    transactional (live server) test's stay until cleared here."""
    if not (DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")):
        return
    from django.core.cache import cache

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        cache.clear()


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """File storage in a fresh folder, so tests can assert exactly what was written."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def users(db) -> dict:
    """Every role of the authorization matrix."""
    return {
        "host": make_user("host1"),
        "other_host": make_user("host2"),
        "participant": make_user("alice"),
        "other_participant": make_user("bob"),
        "admin": make_user("root1", staff=True),
    }


@pytest.fixture
def world(media, users) -> dict:
    """Two challenges of two host teams; alice's team and bob's team registered in the first
    (``tests.factories.two_challenges``). tests/server's ``world`` is a ``World`` of results instead."""
    return two_challenges(users)
