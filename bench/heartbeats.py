"""What keeping 16 leases costs the server per heartbeat interval: one request per job, or one for all.

    .venv/bin/python bench/heartbeats.py [--jobs 16] [--rounds 200] [--output FILE]

A fresh SQLite platform (``bench/_serve.py``'s seed) gets ``--jobs`` submissions, leased in one batched
claim by the seed's worker token. One heartbeat interval is then renewed four ways, each ``--rounds``
times after warm-up: the one-job route once per job (what a worker sent before issue 13's batched
heartbeat: ``POST /api/v1/worker/jobs/{id}/heartbeat``), the batched route once
(``POST /api/v1/worker/heartbeat``), and the same two through the in-process transport (the embedded
worker: services called directly). Requests go through Django's test client in this process (no
network: what the server itself spends). Per interval: CPU of this process (``time.process_time``,
so the figure survives a busy machine), wall, and SQL statements. Prints a table and writes JSON with
the CPU model and load average.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import machine  # noqa: E402
from platform_harness import base_env  # noqa: E402


def ways(info: dict, jobs: int) -> dict[str, Callable[[], None]]:
    """One interval's heartbeats, each way, for ``jobs`` jobs leased here."""
    from django.test import Client

    from assay.server.inprocess_client import InProcessClient

    participant = Client(HTTP_AUTHORIZATION=f"Bearer {info['token']}", HTTP_HOST="127.0.0.1")
    worker = Client(HTTP_AUTHORIZATION=f"Bearer {info['worker_token']}", HTTP_HOST="127.0.0.1")

    def check(response, status: int = 200):
        if response.status_code != status:
            raise RuntimeError(f"{response.request['PATH_INFO']}: {response.status_code} {response.content[:300]!r}")
        return response

    for n in range(jobs):
        body = io.BytesIO(json.dumps({"score": n}).encode())
        body.name = "preds.json"
        check(participant.post(f"/api/v1/phases/{info['phase']}/submissions", {"input_file": body}), 201)
    claim = {"worker_id": "bench", "wait": 0, "max_jobs": jobs}
    held = check(worker.post("/api/v1/worker/claim", claim, "application/json")).json()["jobs"]
    if len(held) != jobs:
        raise RuntimeError(f"claimed {len(held)} jobs, not {jobs}")
    pairs = [(j["submission_id"], j["attempt"]) for j in held]
    batch = {"jobs": [{"submission_id": sid, "attempt": attempt} for sid, attempt in pairs]}
    inprocess = InProcessClient(info["worker_token"])
    inprocess._loop_thread = threading.current_thread()  # as the worker's own thread: its connection is kept

    def one_by_one_http() -> None:
        for sid, attempt in pairs:
            check(worker.post(f"/api/v1/worker/jobs/{sid}/heartbeat", {"attempt": attempt}, "application/json"))

    def batched_http() -> None:
        answer = check(worker.post("/api/v1/worker/heartbeat", batch, "application/json")).json()["jobs"]
        if any(b["state"] != "extended" for b in answer):
            raise RuntimeError(f"a lease was not renewed: {answer}")

    def one_by_one_inprocess() -> None:
        for sid, attempt in pairs:
            inprocess.heartbeat(sid, attempt)

    def batched_inprocess() -> None:
        if set(inprocess.heartbeat_several(pairs)) != {"extended"}:
            raise RuntimeError("a lease was not renewed")

    return {
        "one request per job (HTTP)": one_by_one_http,
        "one batched request (HTTP)": batched_http,
        "one call per job (in-process)": one_by_one_inprocess,
        "one batched call (in-process)": batched_inprocess,
    }


def measure(way: Callable[[], None], rounds: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):  # imports, compiled queries, the token cache: not counted
        way()
    cpu, wall = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        way()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    with CaptureQueriesContext(connection) as captured:
        way()
    return {
        "cpu_ms_per_interval": round(1000 * statistics.mean(cpu), 3),
        "wall_p50_ms_per_interval": round(1000 * statistics.median(wall), 3),
        "sql_statements_per_interval": len(captured.captured_queries),
    }


def run(jobs: int, rounds: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-heartbeats-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.update(base_env(tmp))
    from _serve import seed

    from assay.server.commands import migrate

    migrate(verbosity=0)
    info = seed(tmp / "info.json", 0)
    load = os.getloadavg()
    result: dict = {"machine": machine(), "jobs": jobs, "rounds": rounds, "ways": {}}
    for name, way in ways(info, jobs).items():
        result["ways"][name] = measure(way, rounds)
    w = result["ways"]
    for transport, before, after in (
        ("http", "one request per job (HTTP)", "one batched request (HTTP)"),
        ("inprocess", "one call per job (in-process)", "one batched call (in-process)"),
    ):
        result[f"cpu_ratio_{transport}"] = round(w[before]["cpu_ms_per_interval"] / w[after]["cpu_ms_per_interval"], 1)
    result["load_average"] = [round(x, 2) for x in load]
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "heartbeats.json")
    args = parser.parse_args()
    result = run(args.jobs, args.rounds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"{args.jobs} leases renewed per interval; {m['cpu']}, {m['cpus']} CPUs, load {result['load_average']}")
    for name, r in result["ways"].items():
        print(f"  {name:32} CPU {r['cpu_ms_per_interval']:8.3f} ms   wall p50 {r['wall_p50_ms_per_interval']:8.3f} ms"
              f"   {r['sql_statements_per_interval']:3} SQL")  # fmt: skip
    print(f"JSON: {args.output}")


if __name__ == "__main__":
    main()
