"""What idle workers cost the server, and how fast a waiting worker gets new work.

    .venv/bin/python bench/idle_workers.py [--workers 0,1,4] [--seconds 20] [--latency 20]
                                           [--server runserver|gunicorn] [--output FILE]

For each worker count N, a fresh ``assay serve``-like server (``bench/_serve.py``, no in-process
worker; or gunicorn, one process per core × 4 threads, from ``make bench-deps``) gets N real
``assay worker`` processes with nothing to do: they sit in the claim long-poll. After a settling
pause, the server's CPU time (its process tree, from the OS: ``bench/measure.py``) is read over
``--seconds`` seconds. Claim latency: with one long-poll waiting (a plain claim request, as the
worker sends it), the time from the moment a submission is posted until that claim answers with
it; the job is then completed as a failure so the next round starts from an empty queue. Printed
as JSON (and written to ``--output``) with the CPU model and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import cpu_seconds, machine  # noqa: E402
from platform_harness import Platform  # noqa: E402


def idle_cost(workers: int, seconds: float, server: str) -> dict:
    with Platform(worker=False, external_workers=workers, server=server) as p:
        time.sleep(8 if workers else 2)  # the workers start (imports, first claim) before measuring
        load = os.getloadavg()
        before, t0 = cpu_seconds(p.server.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(p.server.pid) - before, time.monotonic() - t0
    return {
        "workers": workers,
        "seconds": round(elapsed, 1),
        "server_cpu_seconds": round(used, 3),
        "server_cpu_percent_of_a_core": round(100 * used / elapsed, 2),
        "load_average": load,
    }


def claim_latency(rounds: int, server: str) -> dict:
    samples: list[float] = []
    submits: list[float] = []
    with Platform(worker=False, server=server) as p:
        worker = httpx.Client(
            base_url=p.url + "/api/v1/worker", timeout=60, headers={"Authorization": f"Bearer {p.info['worker_token']}"}
        )
        for n in range(rounds):
            answer: dict = {}

            def claim(box: dict = answer) -> None:
                response = worker.post("/claim", json={"worker_id": "bench", "wait": 20})
                box["at"] = time.perf_counter()
                box["job"] = response.json()["job"] if response.status_code == 200 else None

            thread = threading.Thread(target=claim)
            thread.start()
            time.sleep(0.5)  # the claim is waiting
            posted = time.perf_counter()
            p.submit(json.dumps({"score": n}).encode())
            submitted = time.perf_counter()
            thread.join(30)
            job = answer.get("job")
            if job is None:
                raise RuntimeError("the waiting claim did not get the submission")
            samples.append(answer["at"] - posted)
            submits.append(submitted - posted)
            worker.post(f"/jobs/{job['submission_id']}/complete", json={"attempt": job["attempt"], "error": "bench"})
        worker.close()
    samples.sort()
    return {
        "rounds": rounds,
        "p50_ms": round(1000 * statistics.median(samples), 1),
        "max_ms": round(1000 * samples[-1], 1),
        "submit_request_p50_ms": round(1000 * statistics.median(submits), 1),
        "note": "from the submit request's start to the waiting claim's answer (includes the submit request)",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="0,1,4")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--latency", type=int, default=20, help="claim-latency rounds (0: skip)")
    parser.add_argument("--server", choices=("runserver", "gunicorn"), default="runserver")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = {
        "machine": machine(),
        "server": args.server,
        "idle": [idle_cost(int(n), args.seconds, args.server) for n in args.workers.split(",")],
    }
    if args.latency:
        result["claim_latency"] = claim_latency(args.latency, args.server)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
