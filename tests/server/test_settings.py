"""Settings from the environment: database URL, WAL mode, a generated secret key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode")
        assert cur.fetchone()[0].lower() == "wal"


def _settings_in(tmp_path, **env) -> str:
    code = "from django.conf import settings as s; print(s.SECRET_KEY); print(s.DATABASES['default']['ENGINE'])"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    full_env.update(DJANGO_SETTINGS_MODULE="assay.server.settings", ASSAY_VAR_DIR=str(tmp_path), **env)
    run = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, check=True)
    return run.stdout


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = _settings_in(tmp_path)
    assert first == _settings_in(tmp_path)
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first.splitlines()[0] == key_file.read_text()
    assert first.splitlines()[1] == "assay.server.sqlite_backend"  # Django's SQLite, writers queued


def test_processes_starting_together_read_one_whole_secret_key(tmp_path, monkeypatch):
    """gunicorn's workers and pytest-xdist's start at once on a fresh var folder: none may read the key
    file before it is written (an empty key) or keep a key of its own."""
    import threading

    from assay.server import settings as module

    monkeypatch.delenv("ASSAY_SECRET_KEY", raising=False)
    for round_ in range(20):
        folder = tmp_path / str(round_)
        folder.mkdir()
        monkeypatch.setattr(module, "VAR_DIR", folder)
        start, keys = threading.Barrier(8), []

        def read(start: threading.Barrier, keys: list[str]) -> None:
            start.wait()
            keys.append(module._secret_key())

        threads = [threading.Thread(target=read, args=(start, keys)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(keys)) == 1 and len(keys[0]) > 40, keys
        assert [p.name for p in folder.iterdir()] == ["secret_key"]  # no draft left behind


def test_database_url_selects_postgresql(tmp_path):
    out = _settings_in(tmp_path, ASSAY_DATABASE_URL="postgres://u@db.example:5432/x", ASSAY_SECRET_KEY="k")
    assert out.splitlines() == ["k", "django.db.backends.postgresql"]


def _limits_in(tmp_path, **env) -> list[int]:
    code = "from django.conf import settings as s; print(s.DATA_PACKAGE_MAX_BYTES, s.DATA_PACKAGE_MAX_ENTRIES)"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    full_env.update(DJANGO_SETTINGS_MODULE="assay.server.settings", ASSAY_VAR_DIR=str(tmp_path), **env)
    run = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, check=True)
    return [int(v) for v in run.stdout.split()]


def test_data_package_limits_are_settings_from_the_environment(tmp_path):
    """A version's archive limits (docs/data-packages.md) are the operator's, like a bundle's."""
    assert _limits_in(tmp_path) == [20 * 1024**3, 10_000]
    env = {"ASSAY_DATA_PACKAGE_MAX_BYTES": "1048576", "ASSAY_DATA_PACKAGE_MAX_ENTRIES": "25"}
    assert _limits_in(tmp_path, **env) == [1048576, 25]
