"""The server's CPU per submit request alone: no worker, no evaluation, 4 client threads posting.

    .venv/bin/python bench/submit_requests.py [--submissions 600] [--server runserver|gunicorn] [--rounds 1]

A fresh platform (``platform_harness.Platform(worker=False)``: ``assay serve``'s dev server, or gunicorn
2 × 4 gthread as the API row starts it), 30 warm-up submits, then ``--submissions`` trivial submits from 4
threads; prints the server's CPU per submit request from the OS (gunicorn: its whole process tree) and the
submit rate, one JSON line per round. Run two checkouts (``PYTHONPATH=<tree>/src``) alternately to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import CpuMeter, load_average  # noqa: E402
from platform_harness import Platform  # noqa: E402


def one_round(n: int, server: str) -> dict:
    with Platform(worker=False, server=server) as p:
        clients = [p.client() for _ in range(4)]

        def post(i: int) -> int:
            return p.submit(b'{"score": 0.5}', api=clients[i % 4])

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(post, range(30)))  # imports, caches, connections
        meter = CpuMeter(p.cpu).start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(post, range(n)))
        wall = time.perf_counter() - t0
        meter.stop()
        for c in clients:
            c.close()
    cpu = meter.per_item_ms(n)
    return {"server": server, "submits": n, "submits_per_s": round(n / wall, 1),
            "server_cpu_ms_per_submit": cpu.get("server"), "cpu_ms": cpu, "load_average": load_average(),
            "pythonpath": os.environ.get("PYTHONPATH", "")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=600)
    parser.add_argument("--server", choices=("runserver", "gunicorn"), default="runserver")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.rounds):
        print(json.dumps(one_round(args.submissions, args.server)), flush=True)


if __name__ == "__main__":
    main()
