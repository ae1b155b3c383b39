"""A server process (and the embedded worker's process) loads the URL conf at start; matplotlib, half a second of
CPU to import, waits for the first audit plot instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_url_conf_does_not_import_matplotlib():
    code = (
        "import sys, django; django.setup(); import assay.server.urls;"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib');"
        "print(heavy[:5]); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assay.server.settings"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
