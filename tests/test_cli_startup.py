"""The CLI starts without loading the bundle model (pydantic, yaml, packaging): only bundle commands need it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_start_up_does_not_import_the_bundle_model():
    code = (
        "import sys, assay.cli.main;"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml', 'packaging')"
        " or m.startswith('assay.bundle'));"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
