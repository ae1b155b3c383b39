"""assay.audit runs in a host's script: importing it loads neither Django nor another assay package."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_audit_metrics_loads_no_django_and_no_other_assay_package():
    code = (
        "import sys, assay.audit;"
        "assay.audit.figures(assay.audit.BinaryTask.of([0, 1, 1], [0.2, 0.7, 0.4]), resamples=10);"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')"
        " or m.startswith(('assay.server', 'assay.bundle', 'assay.evaluation', 'assay.worker', 'assay.cli')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
