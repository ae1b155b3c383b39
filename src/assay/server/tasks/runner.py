"""The loop that runs tasks: in a thread of the server (``assay serve`` / ``assay demo``) or as its own
process (``assay admin run-tasks``, for production, where the web server's processes run none).

Each round drains what is due, then waits for a commit of this process to wake it
(:data:`queue.wakeup`) or for ``TASKS_POLL_SECONDS`` to pass (a task committed by another process). Within a
round, after running a short batch it waits ``TASKS_GATHER_SECONDS`` before reading again, so a stream of tasks
is run in batches (see :func:`queue.run_due`).
A database error (a restart, a lost connection) is logged and waited out; the loop keeps going.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

from . import queue

log = logging.getLogger("assay.tasks")
PRUNE_EVERY = 3600.0  # seconds between deletions of old finished tasks
ERROR_PAUSE = 5.0  # seconds to wait after a round failed (the database went away)
#: Seconds a round waits after a short batch that ran tasks before it reads again: the results' e-mails of a busy
#: worker then run 10-20 to a batch handler's call (a quarter of the CPU per result of one call each), and an e-mail
#: is at most this late. 0: no wait.
GATHER_SECONDS = 0.2


class Runner:
    """``serve()`` until ``stop()``; ``thread`` runs it when started with :func:`start`."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._thread_main, name="assay-tasks", daemon=True)
        self.problem: str | None = None
        self._pruned_at = 0.0

    def stop(self) -> None:
        self._stopping.set()
        queue.wakeup.set()

    def serve(self, once: bool = False) -> int:
        """Run rounds until stopped (or one round, with ``once``); how many tasks ran."""
        poll = float(getattr(settings, "TASKS_POLL_SECONDS", 2))
        total = 0
        while not self._stopping.is_set():
            queue.wakeup.clear()
            try:
                close_old_connections()  # honour CONN_MAX_AGE and health checks outside requests too
                total += queue.run_due(woken_only=not once, pause=None if once else self._gather)
                if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    queue.prune()
                self.problem = None
            except Exception as exc:  # noqa: BLE001 - the loop outlives a bad moment of the database
                self.problem = f"{type(exc).__name__}: {exc}"
                log.exception("the task runner's round failed; trying again in %.0f s", ERROR_PAUSE)
                if once:
                    raise
                self._stopping.wait(ERROR_PAUSE)
                continue
            if once:
                break
            queue.wakeup.wait(poll)
        return total

    def _gather(self) -> None:
        """Between two reads of a stream of tasks: let the next ones come, to be run together (see run_due)."""
        self._stopping.wait(float(getattr(settings, "TASKS_GATHER_SECONDS", GATHER_SECONDS)))

    def _thread_main(self) -> None:
        try:
            self.serve()
        finally:
            connections.close_all()


_current: Runner | None = None


def start() -> Runner:
    """Start the task runner thread of this server process."""
    global _current
    runner = Runner()
    _current = runner
    runner.thread.start()
    log.info("task runner thread started")
    return runner


def health() -> str | None:
    """Why this process's task runner thread is not running, or None (also when it runs none)."""
    runner = _current
    if runner is None:
        return None
    if not runner.thread.is_alive():
        return "the task runner thread is not running"
    return runner.problem
