"""The leaderboard benchmark still runs end to end (tiny data, no timing asserted): bench/leaderboard.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from tests.factories import REPO


def test_leaderboard_bench_runs_and_agrees_with_evalai(tmp_path):
    out = tmp_path / "leaderboard.json"
    cmd = [sys.executable, str(REPO / "bench" / "leaderboard.py"), "--entries", "2000", "--teams", "40"]
    cmd += ["--requests", "3", "--baseline-runs", "1", "--output", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("ASSAY_DATABASE_URL", "ASSAY_VAR_DIR")}
    url = os.environ.get("ASSAY_DATABASE_URL", "")
    database = "postgres" if url.startswith("postgres") else "sqlite"
    if database == "postgres":  # the suite's server, a database of the bench's own (named per run: runs overlap)
        own = f"/assay_bench_smoke_{uuid.uuid4().hex[:10]}"
        cmd += ["--database", "postgres", "--database-url", url.rsplit("/", 1)[0] + own]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())[database]
    assert result["entries"] == 2000 and result["teams"] == 40 and result["standings_rows"] > 0
    assert result["top50_agrees_with_evalai"] is True
    assert {"anonymous top-50", "team member top-50", "host top-50 all entries"} <= set(result["api"])
    assert set(result["api_after_write"]) == set(result["api"]) == set(result["sql_statements"])
    for name, counts in result["sql_statements"].items():  # a cached page reads the cache; after a write it builds
        assert 0 < counts["cached"] < counts["after_write"], name
        assert result["api"][name]["cpu_ms"] > 0 and result["api_after_write"][name]["cpu_ms"] > 0
    assert result["machine"]["cpus"] and result["commit"]
    assert result["evalai_baseline"]["p50_ms"] > 0 and result["speedup_vs_evalai_p50"] > 0
    # the database server's CPU per request: on PostgreSQL when it runs on this machine, for every view or none
    present = ["db_cpu_ms" in v for v in [*result["api"].values(), *result["api_after_write"].values()]]
    assert all(present) or not any(present)
    assert not any(present) or database == "postgres"


def test_leaderboard_bench_times_a_kept_database_again(tmp_path):
    """--keep then --reuse (A/B runs of two commits on one built database); PostgreSQL only."""
    url = os.environ.get("ASSAY_DATABASE_URL", "")
    if not url.startswith("postgres"):
        import pytest

        pytest.skip("--reuse is for a kept PostgreSQL database")
    own = url.rsplit("/", 1)[0] + f"/assay_bench_smoke_{uuid.uuid4().hex[:10]}"
    out = tmp_path / "leaderboard.json"
    base = [sys.executable, str(REPO / "bench" / "leaderboard.py"), "--database", "postgres", "--database-url", own]
    base += ["--requests", "2", "--baseline-runs", "0", "--output", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("ASSAY_DATABASE_URL", "ASSAY_VAR_DIR")}
    built = subprocess.run([*base, "--entries", "500", "--teams", "20", "--keep", "--label", "built"], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    # timed again and dropped (no --keep)
    again = subprocess.run([*base, "--reuse", "--label", "again"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["again"]["reused_database"] and results["again"]["generate_s"] is None
    assert results["again"]["entries"] == 500 and results["again"]["teams"] == 20
    assert results["again"]["sql_statements"] == results["built"]["sql_statements"]
    assert results["again"]["evalai_baseline"] is None
