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
    assert first.splitlines()[1] == "django.db.backends.sqlite3"


def test_database_url_selects_postgresql(tmp_path):
    out = _settings_in(tmp_path, ASSAY_DATABASE_URL="postgres://u@db.example:5432/x", ASSAY_SECRET_KEY="k")
    assert out.splitlines() == ["k", "django.db.backends.postgresql"]
