"""Enqueue, claim and run tasks: the database is the queue, as it is for submissions.

A task row is written inside the caller's transaction, so it commits with the change that asked for it
and a rolled-back request leaves none (nothing is sent for a change that did not happen); the commit then
wakes this process's runner (``transaction.on_commit``), and other processes' runners find it at their
next poll. Claiming takes one due row with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (runners in
many processes never wait for each other) and inside SQLite's single-writer ``BEGIN IMMEDIATE`` there; the
claim then moves the row to ``running`` with a lease, and the handler runs outside any transaction of
ours. A failure is retried after an exponential backoff with jitter; a runner that dies leaves its lease
to run out, and the task is taken again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Task
from .registry import Permanent, lookup

log = logging.getLogger("assay.tasks")
S = Task.State

MAX_NAME = 100
MAX_ERROR = 4000  # characters of the last error kept on the row

#: Set when a task is committed in this process: the in-process runner stops waiting for its next poll.
wakeup = threading.Event()


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def enqueue(name: str, payload: dict, *, delay: float = 0, max_attempts: int = 8) -> None:
    """Run handler ``name`` with ``payload`` (JSON) after ``delay`` seconds, once the caller's transaction
    commits; up to ``max_attempts`` runs in all. An unknown name or a payload JSON cannot hold is refused
    here, at the caller, not later in the runner."""
    if lookup(name) is None:
        raise ValueError(f"no task handler named {name!r} is registered")
    if not isinstance(payload, dict):
        raise TypeError("a task's payload is a dict")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a task's payload must be plain JSON: {exc}") from None
    if max_attempts < 1:
        raise ValueError("max_attempts is at least 1")
    Task.objects.create(
        name=name,
        payload=payload,
        max_attempts=max_attempts,
        run_after=timezone.now() + dt.timedelta(seconds=max(0.0, delay)),
    )
    transaction.on_commit(wakeup.set)


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed runs: doubling from
    ``TASKS_RETRY_BASE_SECONDS`` up to ``TASKS_RETRY_CAP_SECONDS``, each between half and all of that
    (jitter: many tasks failing together, e.g. one receiver down, do not all come back at once)."""
    base = _setting("TASKS_RETRY_BASE_SECONDS", 10)
    cap = _setting("TASKS_RETRY_CAP_SECONDS", 3600)
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def claim(now: dt.datetime | None = None) -> Task | None:
    """Take one due task (the oldest queued one whose time has come, else one whose runner's lease ran
    out) and mark it running under a lease; None when nothing is due."""
    now = now or timezone.now()
    due = Q(state=S.QUEUED, run_after__lte=now) | Q(state=S.RUNNING, lease_expires_at__lte=now)
    if not Task.objects.filter(due).exists():
        return None  # a plain read first: an idle runner never takes SQLite's write lock (BEGIN IMMEDIATE)
    while True:
        with transaction.atomic():
            row = (
                Task.objects.select_for_update(skip_locked=True)
                .filter(state=S.QUEUED, run_after__lte=now)
                .order_by("run_after", "id")
                .first()
            )
            if row is None:
                row = (
                    Task.objects.select_for_update(skip_locked=True)
                    .filter(state=S.RUNNING, lease_expires_at__lte=now)
                    .order_by("lease_expires_at", "id")
                    .first()
                )
                if row is None:
                    return None
                if row.attempts >= row.max_attempts:
                    row.state = S.FAILED
                    row.lease_expires_at = None
                    row.last_error = f"its runner stopped during attempt {row.attempts} (the lease ran out)"
                    row.save(update_fields=["state", "lease_expires_at", "last_error", "updated_at"])
                    log.error("task %s gave up: %s", row, row.last_error)
                    continue
            registered = lookup(row.name)
            lease = registered.lease_seconds if registered and registered.lease_seconds else None
            row.state = S.RUNNING
            row.attempts += 1
            row.lease_expires_at = now + dt.timedelta(seconds=lease or _setting("TASKS_LEASE_SECONDS", 600))
            row.save(update_fields=["state", "attempts", "lease_expires_at", "updated_at"])
            return row


def run(row: Task, now: dt.datetime | None = None) -> bool:
    """Run a claimed task's handler and record the outcome; True when it succeeded."""
    registered = lookup(row.name)
    error: str | None = None
    permanent = False
    try:
        if registered is None:
            raise Permanent(f"no task handler named {row.name!r} is registered")
        registered.function(dict(row.payload))
    except Permanent as exc:
        error, permanent = f"{exc}", True
    except Exception as exc:  # noqa: BLE001 - any failure of a handler is retried
        error = f"{type(exc).__name__}: {exc}"
        log.warning("task %s failed: %s", row, error, exc_info=True)
    # only if the row is still ours: a runner whose lease ran out must not overwrite its successor's outcome
    mine = Task.objects.filter(pk=row.pk, state=S.RUNNING, attempts=row.attempts)
    if error is None:
        mine.update(state=S.DONE, lease_expires_at=None, last_error="", updated_at=timezone.now())
        return True
    error = error[:MAX_ERROR]
    if permanent or row.attempts >= row.max_attempts:
        mine.update(state=S.FAILED, lease_expires_at=None, last_error=error, updated_at=timezone.now())
        log.error("task %s gave up after %d attempts: %s", row, row.attempts, error)
    else:
        after = (now or timezone.now()) + dt.timedelta(seconds=backoff(row.attempts))
        mine.update(state=S.QUEUED, run_after=after, lease_expires_at=None, last_error=error, updated_at=timezone.now())
    return False


def run_due(limit: int = 1000, now: dt.datetime | None = None) -> int:
    """Claim and run due tasks one by one until none is due (or ``limit`` ran); how many ran. Tests call it
    to drain the queue synchronously (``now`` later than the present runs retries whose backoff has not
    passed yet)."""
    ran = 0
    while ran < limit:
        row = claim(now)
        if row is None:
            break
        run(row, now)
        ran += 1
    return ran


def prune(now: dt.datetime | None = None) -> int:
    """Delete finished tasks (done or failed) older than ``TASKS_KEEP_DAYS``; how many."""
    before = (now or timezone.now()) - dt.timedelta(days=_setting("TASKS_KEEP_DAYS", 14))
    deleted, _ = Task.objects.filter(state__in=(S.DONE, S.FAILED), updated_at__lt=before).delete()
    return deleted
