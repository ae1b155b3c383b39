"""The benchmarks still work: a seconds-long smoke run of bench/run.py (no timing is asserted).

The full benchmarks run with ``make bench`` / ``make bench-quick``, never as part of ``make test``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def run_module():
    sys.path.insert(0, str(BENCH))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(BENCH))


def test_engine_and_platform_rows_run(run_module, tmp_path, capsys):
    out = tmp_path / "smoke.json"
    results = run_module.main(["--smoke", "--only", "overhead,warm,chunked", "--output", str(out)])
    for key in ("overhead", "warm", "chunked"):
        assert "error" not in results[key], results[key]["error"]
    assert results["overhead"]["baseline_raw_evaluate"]["p50_ms"] > 0
    assert results["overhead"]["baseline_raw_claim_transaction"]["p50_ms"] > 0
    assert results["overhead"]["cpu_ms_per_submission"]["total"] > 0  # the server did work, read from the OS
    assert results["machine"]["cpu"] and len(results["machine"]["load_average_at_start"]) == 3
    assert results["warm"]["cold_p50_s"] > 0 and results["warm"]["warm_p50_ms"] > 0
    assert results["chunked"]["plain_s"] > 0 and results["chunked"]["chunked_s"] > 0
    assert json.loads(out.read_text())["mode"] == "smoke"
    printed = capsys.readouterr().out
    for row in ("overhead", "warm", "chunked"):
        assert row in printed


def test_table_has_every_row(run_module):
    """Every row of the issue prints with its baseline and ratio, from a results file's shape."""
    api = {"tool": "wrk", "req_per_s": 600.0, "p50_ms": 5.0, "p99_ms": 20.0}
    lb = {"entries": 10, "teams": 2, "api": {"anonymous top-50": {"p50_ms": 1.0, "p95_ms": 2.0}},
          "evalai_baseline": {"p50_ms": 9.0}, "speedup_vs_evalai_p50": 9.0, "meets_target": True}  # fmt: skip
    results = {
        "overhead": {"p50_ms": 1.0, "p99_ms": 2.0, "baseline_raw_evaluate": {"p50_ms": 0.01}, "ratio_p50": 100.0,
                     "target": "t", "meets_target": True},
        "throughput": {"evaluated_per_s": 120.0, "workers": "embedded", "lost": 0, "target": "t", "meets_target": True,
                       "cpu_ms_per_submission": {"server": 5.0, "total": 5.0}},
        "idle": {"cpu_percent_of_a_core": {"workers": 0.2, "server": 0.3}, "target": "t", "meets_target": True},
        "warm": {"annotation_mb": 1, "warm_p50_ms": 1.0, "cold_p50_s": 1.0, "evalai_mode_p50_s": 1.0,
                 "ratio_cold_over_warm": 1000.0, "ratio_evalai_over_warm": 900.0, "target": "t", "meets_target": True},
        "chunked": {"items": 10, "chunked_s": 1.0, "plain_s": 2.0, "speedup": 2.0,
                    "dask": {"warm_s": 1.0, "speedup": 2.0}, "target": "t", "meets_target": True},
        "leaderboard": {"sqlite": lb, "postgres": {"skipped": "no server"}},
        "api": {"runserver": {"leaderboard": api, "challenge list": api}, "target": "t"},
        "upload": {"size_mb": 10, "mb_per_s": 5.0, "server_peak_rss_mb": 100.0, "server_rss_before_mb": 90.0,
                   "target": "t", "meets_target": True},
    }  # fmt: skip
    names = [row[0] for row in run_module.table(results)]
    for expected in ("overhead", "throughput", "idle worker", "warm", "chunked", "leaderboard sqlite",
                     "leaderboard postgres", "api leaderboard (runserver)", "api challenge list (runserver)",
                     "upload"):  # fmt: skip
        assert expected in names


def test_cpu_of_a_process_tree_counts_its_children(run_module):
    """A child that burns CPU in a grandchild is charged for it: the platform rows' CPU figures rest on this."""
    import subprocess
    import time

    import measure

    burn = "import time; t = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {burn!r}]); time.sleep(5)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        meter = measure.CpuMeter(lambda: {"tree": measure.cpu_seconds(child.pid)}).start()
        deadline = time.monotonic() + 4
        while meter.stop()["tree"] < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert meter.used["tree"] >= 0.25
        assert measure.process_cpu_seconds(child.pid) < 0.25  # the burning grandchild is not the child itself
    finally:
        child.kill()
        child.wait()
