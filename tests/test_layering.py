"""The layering of ARCHITECTURE.md: bundle and CLI work without Django or the server."""

from __future__ import annotations

import os
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


def test_an_upward_import_between_server_apps_breaks_the_layers_contract(tmp_path):
    """The layers contract is live: a copy of the source where submissions imports leaderboards fails it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "assay", src / "assay", ignore=shutil.ignore_patterns("__pycache__"))
    queue = src / "assay" / "server" / "submissions" / "services" / "queue.py"
    queue.write_text(queue.read_text() + "\nfrom assay.server.leaderboards.services import standings  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [exe, "--config", str(ROOT / "pyproject.toml")]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "assay.server.submissions is not allowed to import assay.server.leaderboards" in run.stdout


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
