"""bench/idle_workers.py still works: a seconds-long run (no figure is asserted, only that it measured)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "idle_workers.py"


def test_idle_workers_bench_runs(tmp_path):
    out = tmp_path / "idle.json"
    subprocess.run(
        [sys.executable, str(BENCH), "--workers", "1", "--seconds", "1", "--latency", "2", "--output", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(out.read_text())
    assert [row["workers"] for row in result["idle"]] == [1]
    assert result["idle"][0]["server_cpu_seconds"] >= 0 and result["idle"][0]["seconds"] >= 1
    assert result["claim_latency"]["rounds"] == 2 and result["claim_latency"]["p50_ms"] > 0
    assert result["machine"]["cpu"] and result["server"] == "runserver"
