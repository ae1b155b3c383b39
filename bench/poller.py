"""Watches a leaderboard from its own process, so the overhead row's polling is not done by the process it times.

    python bench/poller.py URL TOKEN INTERVAL_S

Reads one submission id per line on stdin; GETs ``URL`` every ``INTERVAL_S`` seconds until that
submission is the top entry, then prints ``<id> <time.monotonic()> <polls>`` (CLOCK_MONOTONIC is
system-wide on Linux, so the benchmark compares it with its own clock). EOF ends it.
"""

from __future__ import annotations

import sys
import time

import httpx


def main() -> None:
    url, token, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for line in sys.stdin:
            sid, polls = int(line), 0
            while True:
                polls += 1
                top = client.get(url).json()["results"]
                if top and top[0]["submission"]["id"] == sid:
                    break
                time.sleep(interval)
            print(sid, time.monotonic(), polls, flush=True)


if __name__ == "__main__":
    main()
