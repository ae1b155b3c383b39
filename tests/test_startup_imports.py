"""What starting up imports: heavy modules wait for the command or page that needs them.

The CLI starts without the bundle model (pydantic, yaml, packaging): only bundle commands need it. A server
process (and the embedded worker's process) loads the URL conf at start; matplotlib, half a second of CPU to
import, waits for the first audit plot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(statements: str, wanted: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules ``wanted`` (a Python test on the name ``m``) that a fresh interpreter holds after ``statements``."""
    code = f"import json, sys; {statements}; print(json.dumps(sorted(m for m in sys.modules if {wanted})))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_cli_start_up_does_not_import_the_bundle_model():
    heavy = "m.split('.')[0] in ('pydantic', 'yaml', 'packaging') or m.startswith('assay.bundle')"
    assert loaded_after("import assay.cli.main", heavy) == []


def test_loading_the_url_conf_does_not_import_matplotlib():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assay.server.settings"}
    statements = "import django; django.setup(); import assay.server.urls"
    assert loaded_after(statements, "m.split('.')[0] == 'matplotlib'", env) == []
