"""The layering of ARCHITECTURE.md: bundle and CLI work without Django or the server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contract_is_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed")
    run = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_and_bundle_do_not_load_django_at_run_time():
    """Stronger than the static contract: nothing imported indirectly pulls Django in either."""
    code = (
        "import sys, assay.cli.main, assay.bundle;"
        "from typer.testing import CliRunner;"
        "r = CliRunner().invoke(assay.cli.main.app, ['bundle', 'validate', 'examples/demo-challenge']);"
        "assert r.exit_code == 0, r.output;"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'assay.server')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
