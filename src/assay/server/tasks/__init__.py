"""Durable background tasks: ``enqueue`` a named call, register its handler with ``@handler``.

Lower apps enqueue; higher apps register handlers in their ``AppConfig.ready``. The runner runs them in a
thread of ``assay serve`` (``ASSAY_TASKS_INPROCESS=0`` turns it off) and as ``assay admin run-tasks``;
tests drain the queue with :func:`run_due`. See :mod:`assay.server.tasks.queue` for the rules.

This module imports no models, so an ``AppConfig.ready`` (or any module) may import it at load time.
"""

from __future__ import annotations

import datetime as dt

from .registry import Permanent, handler

__all__ = ["Permanent", "enqueue", "handler", "run_due"]


def enqueue(name: str, payload: dict, *, delay: float = 0, max_attempts: int = 8, key: str = "") -> None:
    """Run the handler ``name`` with ``payload`` after ``delay`` seconds, once the caller's transaction
    commits (nothing when it rolls back); retried with backoff up to ``max_attempts`` runs. With ``key``:
    nothing more while a task of that key waits for its first run (coalescing a burst into one run)."""
    from .queue import enqueue as put

    put(name, payload, delay=delay, max_attempts=max_attempts, key=key)


def run_due(limit: int = 1000, now: dt.datetime | None = None) -> int:
    """Run every due task now, in this thread; how many ran."""
    from .queue import run_due as drain

    return drain(limit=limit, now=now)
