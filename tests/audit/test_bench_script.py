"""bench/audit_metrics.py still runs (a seconds-long run on a small set; no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_audit_bench_reports_cpu_time_and_the_machine(capsys):
    sys.path.insert(0, str(BENCH))
    try:
        import audit_metrics
    finally:
        sys.path.remove(str(BENCH))
    result = audit_metrics.main(["--cases", "300", "--resamples", "20"])
    assert set(result["figures"]) == {"binary", "calibration", "ordinal"}
    assert result["figures"]["binary"]["metrics"] == 9 and result["figures"]["binary"]["cpu_s"] >= 0
    assert result["binary_summary"]["cpu_s"] >= 0
    assert result["machine"]["cpu"] and len(result["machine"]["load_average_at_end"]) == 3
    assert '"sklearn_per_resample_binary_cpu_s"' in capsys.readouterr().out
