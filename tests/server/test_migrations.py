"""Every model change has its migration: a missing one would pass the tests (they build tables from the
models' migrations) yet leave a deployed database without the column."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_its_migration() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # --check exits 1 when a migration would be written
        pytest.fail(f"models changed without a migration (exit {exc.code}):\n{out.getvalue()}")
