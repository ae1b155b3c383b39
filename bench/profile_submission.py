"""Where the CPU of one trivial submission goes, request by request, in one process (no network, no GIL rivals).

    .venv/bin/python bench/profile_submission.py [--submissions 30] [--top 12] [--output FILE]

A fresh SQLite platform (``bench/_serve.py``'s seed: the benchmark challenge, a participant with an
API token, a worker token) is driven through Django's test client exactly along a submission's path:
the participant's submit request, the worker's claim, its download of the submission file, its
``complete`` with the trivial evaluator's output, the background tasks that result queued (what the
server's task thread runs: the team's e-mail, webhooks), and one anonymous leaderboard read; then the same
claim, download and complete as the embedded default's in-process worker makes them (the services
called directly through ``InProcessClient``, no HTTP). The evaluation
itself is left out (the ``warm`` and ``overhead`` rows time it: a few ms). Each phase is timed
(wall and this process's CPU), counted in SQL statements, and profiled with cProfile (CPU time) over
``--submissions`` submissions after three warm-up ones; authentication is reported apart
(the cumulative time of DRF's ``Request._authenticate``). Prints a summary and writes
JSON (default ``bench/results/profile-submission.json``).
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import machine  # noqa: E402
from platform_harness import base_env  # noqa: E402

# a submission's path twice: an external worker's requests over HTTP, and the embedded default's
# in-process worker calling the same services directly (assay.server.inprocess_client)
PATHS = (("submit", "claim", "download", "complete", "notifications", "leaderboard"),
         ("submit", "claim (in-process)", "download (in-process)", "complete (in-process)",
          "notifications"))  # fmt: skip
PHASES = tuple(dict.fromkeys(p for path in PATHS for p in path))


def drive(info: dict, workdir: Path):
    """A function per phase, each doing one request of the next submission's path (state kept between)."""
    from django.test import Client

    participant = Client(HTTP_AUTHORIZATION=f"Bearer {info['token']}", HTTP_HOST="127.0.0.1")
    worker = Client(HTTP_AUTHORIZATION=f"Bearer {info['worker_token']}", HTTP_HOST="127.0.0.1")
    anonymous = Client(HTTP_HOST="127.0.0.1")
    state: dict = {"n": 0}

    def check(response, status: int):
        if response.status_code != status:
            raise RuntimeError(f"{response.request['PATH_INFO']}: {response.status_code} {response.content[:300]!r}")
        return response

    def submit() -> None:
        state["n"] += 1
        body = io.BytesIO(json.dumps({"score": state["n"]}).encode())
        body.name = "preds.json"
        check(participant.post(f"/api/v1/phases/{info['phase']}/submissions", {"input_file": body}), 201)

    def claim() -> None:
        r = check(worker.post("/api/v1/worker/claim", {"worker_id": "profile", "wait": 0}, "application/json"), 200)
        state["job"] = r.json()["job"]

    def download() -> None:
        r = check(worker.get(f"/api/v1/worker/files/{state['job']['submission_file']['sha256']}"), 200)
        b"".join(r.streaming_content) if r.streaming else r.content

    def complete() -> None:
        job, score = state["job"], float(state["n"])
        report = {"attempt": job["attempt"], "output": {"result": [{"public": {"Accuracy": score, "F1": score}}]},
                  "error": None, "stdout": "", "stderr": "", "sandbox": "bwrap"}  # fmt: skip
        check(worker.post(f"/api/v1/worker/jobs/{job['submission_id']}/complete", report, "application/json"), 200)

    def notifications() -> None:
        from assay.server import tasks

        tasks.run_due()  # what the server's task thread does after a result: the e-mail, webhooks, alerts

    def leaderboard() -> None:
        check(anonymous.get(f"/api/v1/phase-splits/{info['phase_split']}/leaderboard"), 200)

    from assay.server.inprocess_client import InProcessClient

    inprocess = InProcessClient(info["worker_token"])
    files = workdir / "worker-files"
    files.mkdir()

    def claim_inprocess() -> None:
        state["job"] = inprocess.claim("profile", wait=0)

    def download_inprocess() -> None:
        sha = state["job"]["submission_file"]["sha256"]
        inprocess.download(sha, files / sha).unlink()

    def complete_inprocess() -> None:
        job, score = state["job"], float(state["n"])
        report = {"output": {"result": [{"public": {"Accuracy": score, "F1": score}}]},
                  "error": None, "stdout": "", "stderr": "", "sandbox": "bwrap"}  # fmt: skip
        inprocess.complete(job["submission_id"], job["attempt"], report)

    return {"submit": submit, "claim": claim, "download": download, "complete": complete, "leaderboard": leaderboard,
            "notifications": notifications,
            "claim (in-process)": claim_inprocess, "download (in-process)": download_inprocess,
            "complete (in-process)": complete_inprocess}  # fmt: skip


def top(stats: pstats.Stats, per: int, n: int, key: str, ours: bool = False) -> list[dict]:
    """The ``n`` heaviest functions by ``key`` ("tottime": own time, "cumtime": with callees), in ms per submission."""
    rows = []
    for (path, line, name), (_cc, calls, tt, ct, _callers) in stats.stats.items():
        if ours and ("/assay/" not in path or name == "__call__"):  # middleware wraps everything
            continue
        rows.append({"function": f"{_short(path)}:{line}({name})", "calls": round(calls / per, 1),
                     "own_ms": round(1000 * tt / per, 3), "cumulative_ms": round(1000 * ct / per, 3)})  # fmt: skip
    rows.sort(key=lambda r: r["own_ms" if key == "tottime" else "cumulative_ms"], reverse=True)
    return rows[:n]


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


PACKAGES = (  # (label, what the profiled function's file path contains), first match wins
    ("SQLite (the C calls)", "SQLiteCursorWrapper.execute"),
    ("Django ORM (query building, model instances)", "django/db/"),
    ("DRF", "rest_framework/"),
    ("Django other (middleware, URLs, HTTP)", "django/"),
    ("assay", "/assay/"),
)


def by_package(stats: pstats.Stats) -> dict[str, float]:
    """Own time grouped by where it was spent, in % of the phase: is it our code, the ORM or the database?"""
    shares: dict[str, float] = {}
    for (path, _line, name), (_cc, _calls, tt, _ct, _callers) in stats.stats.items():
        where = f"{path}:{name}"
        label = next((lab for lab, marker in PACKAGES if marker in where), "Python and other libraries")
        shares[label] = shares.get(label, 0.0) + tt
    total = sum(shares.values()) or 1.0
    return {k: round(100 * v / total, 1) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


SQL_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def sql_kind(sql: str) -> str:
    """A statement as its verb and first table ("SELECT assay_cache"), so a phase's count says what it pays for."""
    verb = sql.split(None, 1)[0].upper() if sql.strip() else "?"
    table = SQL_TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table else verb


def sql_kinds(kinds: list[str]) -> dict[str, int]:
    """How many of each kind, most first."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def auth_ms(stats: pstats.Stats, per: int) -> float:
    """Cumulative time in DRF's ``Request._authenticate`` (every authentication class, on first ``request.user``)."""
    for (path, _line, name), (_cc, _calls, _tt, ct, _callers) in stats.stats.items():
        if name == "_authenticate" and path.endswith("rest_framework/request.py"):
            return round(1000 * ct / per, 3)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "profile-submission.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-profile-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the database and files go when the run ends
    os.environ.update(base_env(tmp))
    from _serve import seed

    from assay.server.commands import migrate

    migrate(verbosity=0)
    info = seed(tmp / "info.json", 0)
    phases = drive(info, tmp)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # first requests import and compile: not counted
        for path in PATHS:
            for name in path:
                phases[name]()
    wall: dict[str, list[float]] = {p: [] for p in PHASES}
    cpu: dict[str, list[float]] = {p: [] for p in PHASES}
    queries: dict[str, int] = {}
    sequence: dict[str, list[str]] = {}
    for _ in range(args.submissions):
        for path in PATHS:
            for name in path:
                t, c = time.perf_counter(), time.process_time()
                phases[name]()
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    for path in PATHS:
        for name in path:
            with CaptureQueriesContext(connection) as captured:
                phases[name]()
            queries[name] = len(captured.captured_queries)
            sequence[name] = [sql_kind(q["sql"]) for q in captured.captured_queries]
    profiles = {p: cProfile.Profile(time.process_time) for p in PHASES}  # CPU, not the neighbours
    calls = dict.fromkeys(PHASES, 0)
    for _ in range(args.submissions):
        for path in PATHS:
            for name in path:
                profiles[name].runcall(phases[name])
                calls[name] += 1
    result: dict = {"machine": machine(), "submissions": args.submissions, "phases": {}}
    for name in PHASES:
        stats, per = pstats.Stats(profiles[name]), calls[name]
        result["phases"][name] = {
            "wall_p50_ms": round(1000 * statistics.median(wall[name]), 2),
            "cpu_mean_ms": round(1000 * statistics.mean(cpu[name]), 2),
            "sql_statements": queries[name],
            "sql_by_kind": sql_kinds(sequence[name]),
            "sql_in_order": sequence[name],
            "auth_ms_profiled": auth_ms(stats, per),
            "profiled_ms": round(1000 * stats.total_tt / per, 2),
            "own_time_percent_by_package": by_package(stats),
            "top_own": top(stats, per, args.top, "tottime"),
            "top_assay_cumulative": top(stats, per, args.top, "cumtime", ours=True),
        }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name, r in result["phases"].items():
        print(f"\n== {name}: wall p50 {r['wall_p50_ms']} ms, CPU {r['cpu_mean_ms']} ms, {r['sql_statements']} SQL,"
              f" auth {r['auth_ms_profiled']} ms (profiled total {r['profiled_ms']} ms)")  # fmt: skip
        print("   " + ", ".join(f"{k} {v} %" for k, v in r["own_time_percent_by_package"].items()))
        print("   SQL: " + ", ".join(f"{k} {v}" for k, v in r["sql_by_kind"].items()))
        for row in r["top_assay_cumulative"]:
            print(f"   cum {row['cumulative_ms']:8.3f} ms  {row['calls']:5} x  {row['function']}")
        print("   -- own time:")
        for row in r["top_own"][:8]:
            print(f"   own {row['own_ms']:8.3f} ms  {row['calls']:5} x  {row['function']}")
    print(f"\nJSON: {args.output}")


if __name__ == "__main__":
    main()
