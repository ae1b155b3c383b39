"""Enqueue, claim and run tasks: the database is the queue, as it is for submissions.

A task row is written inside the caller's transaction, so it commits with the change that asked for it
and a rolled-back request leaves none (nothing is sent for a change that did not happen); the commit then
wakes this process's runner (``transaction.on_commit``), and other processes' runners find it at their
next poll. Claiming reads the oldest due row and moves it to ``running`` with a lease by one conditional
``UPDATE`` (taken only if still as read, so each run is claimed once on SQLite and PostgreSQL alike: a
runner that lost the race reads again); the handler runs outside any transaction of ours. A failure is
retried after an exponential backoff with jitter; a runner that dies leaves its lease to run out, and the
task is taken again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from assay.server.prepared import Prepared, insert

from .models import Task
from .registry import Permanent, lookup

log = logging.getLogger("assay.tasks")
S = Task.State

MAX_NAME = 100
MAX_KEY = 200
MAX_ERROR = 4000  # characters of the last error kept on the row

#: Set when a task is committed in this process: the in-process runner stops waiting for its next poll.
wakeup = threading.Event()


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def enqueue(name: str, payload: dict, *, delay: float = 0, max_attempts: int = 8, key: str = "") -> None:
    """Run handler ``name`` with ``payload`` (JSON) after ``delay`` seconds, once the caller's transaction
    commits; up to ``max_attempts`` runs in all. An unknown name or a payload JSON cannot hold is refused
    here, at the caller, not later in the runner.

    With a ``key``, nothing is written while a task of that key waits for its first run (a unique partial
    index decides, in the same ``INSERT``: no read first, no race): a burst of changes within ``delay``
    gives one run, whose handler reads the state as it then is. A retry waits outside the index, so a
    failing run never holds back the next change's task."""
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
    if len(key) > MAX_KEY:
        raise ValueError(f"a task's key has at most {MAX_KEY} characters")
    row = Task(
        name=name,
        key=key,
        payload=payload,
        max_attempts=max_attempts,
        run_after=timezone.now() + dt.timedelta(seconds=max(0.0, delay)),
    )
    if key:
        Task.objects.bulk_create([row], ignore_conflicts=True)  # INSERT … ON CONFLICT DO NOTHING / OR IGNORE
    else:
        insert([row])  # one INSERT built once (no signals, none listen): every result enqueues a task
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
    """Take one due task (the oldest whose time has come: queued, or running with its runner's lease run
    out) and mark it running under a lease; None when nothing is due.

    Two statements, no transaction of ours: a plain read of the candidate (an idle runner never takes
    SQLite's write lock), then one conditional ``UPDATE`` that takes it only if it is still as read (same
    state, same attempt count). Two runners reading the same row both try; the database lets one
    ``UPDATE`` match (PostgreSQL re-checks the row once the other's commit releases it), the other finds
    nothing changed and reads again. Exactly once, as with the ``SELECT … FOR UPDATE`` this replaced, for
    half the statements a task costs."""
    now = now or timezone.now()
    while True:
        found = _due_query(1).instances(now=connection.ops.adapt_datetimefield_value(now))
        if not found:
            return None
        row = _take(found[0], now)
        if row is not None:
            return row


def _take(row: Task, now: dt.datetime) -> Task | None:
    """Mark ``row``, read as due, running under a lease if it is still as read; None when another runner took
    it meanwhile, or when it had used its last attempt (it is then failed, not run)."""
    was = (row.pk, row.state, row.attempts)
    if row.state == S.RUNNING and row.attempts >= row.max_attempts:
        error = f"its runner stopped during attempt {row.attempts} (the lease ran out)"
        if _move(*was, state=S.FAILED, lease_expires_at=None, last_error=error, updated_at=now):
            log.error("task %s gave up: %s", row, error)
        return None
    registered = lookup(row.name)
    lease = registered.lease_seconds if registered and registered.lease_seconds else None
    expires = now + dt.timedelta(seconds=lease or _setting("TASKS_LEASE_SECONDS", 600))
    if not _move(*was, state=S.RUNNING, attempts=row.attempts + 1, lease_expires_at=expires, updated_at=now):
        return None  # another runner took it between the read and the update
    row.state, row.attempts, row.lease_expires_at, row.updated_at = S.RUNNING, row.attempts + 1, expires, now
    return row


# The due-task read, compiled once per database and row limit (building it costs the ORM more than running it),
# run with the time: a stand-in no real row's time can be.
_DUE: dict[tuple[str, int], Prepared] = {}
_NOW_MARK = dt.datetime(1901, 1, 1, tzinfo=dt.UTC)
BATCH = 16  # due tasks one read of run_due() hands out; each is still taken by its own conditional UPDATE


def _due_query(limit: int) -> Prepared:
    key = (connection.alias, limit)
    if key not in _DUE:
        due = Q(state=S.QUEUED, run_after__lte=_NOW_MARK) | Q(state=S.RUNNING, lease_expires_at__lte=_NOW_MARK)
        qs = Task.objects.filter(due).order_by("run_after", "id")[:limit]
        _DUE[key] = Prepared(qs, now=connection.ops.adapt_datetimefield_value(_NOW_MARK))
    return _DUE[key]


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
    mine = (row.pk, S.RUNNING, row.attempts)
    if error is None:
        _move(*mine, state=S.DONE, lease_expires_at=None, last_error="", updated_at=timezone.now())
        return True
    error = error[:MAX_ERROR]
    if permanent or row.attempts >= row.max_attempts:
        _move(*mine, state=S.FAILED, lease_expires_at=None, last_error=error, updated_at=timezone.now())
        log.error("task %s gave up after %d attempts: %s", row, row.attempts, error)
    else:
        after = (now or timezone.now()) + dt.timedelta(seconds=backoff(row.attempts))
        _move(
            *mine, state=S.QUEUED, run_after=after, lease_expires_at=None, last_error=error, updated_at=timezone.now()
        )
    return False


# A task's moves, as SQL built once per database and set of columns: the ORM's building of an UPDATE cost more
# than SQLite's running it, twice per task.
_MOVES: dict[tuple[str, tuple[str, ...]], str] = {}


def _move(pk: int, state: str, attempts: int, /, **values) -> bool:
    """Set ``values`` on task ``pk`` only if it is still in ``state`` after ``attempts`` runs (a runner
    that lost it, or lost a race for it, changes nothing); whether it was."""
    key = (connection.alias, tuple(values))
    sql = _MOVES.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(Task._meta.get_field(name).column)} = %s" for name in values)
        where = f"{qn('id')} = %s AND {qn('state')} = %s AND {qn('attempts')} = %s"
        sql = f"UPDATE {qn(Task._meta.db_table)} SET {sets} WHERE {where}"
        _MOVES[key] = sql
    params = [Task._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk, state, attempts])
        return cursor.rowcount > 0


def run_due(limit: int = 1000, now: dt.datetime | None = None, *, woken_only: bool = False) -> int:
    """Claim and run due tasks, oldest first, until none is due (or ``limit`` ran); how many ran. Tests call it
    to drain the queue synchronously (``now`` later than the present runs retries whose backoff has not
    passed yet).

    One read hands out up to :data:`BATCH` due rows, each then taken (:func:`_take`) just before it runs, so
    a backlog costs one read per batch, not per task. With ``woken_only`` (the runner, which cleared
    :data:`wakeup` before calling and waits on it after), a batch that came back short ends the drain unless
    a commit of this process set :data:`wakeup` since: nothing else was due when it was read, and what was
    committed in this process after sets :data:`wakeup` and starts the next round — so a runner keeping up
    with a stream of results reads no empty queue after every task."""
    ran = 0
    while ran < limit:
        found = _due_query(BATCH).instances(now=connection.ops.adapt_datetimefield_value(now or timezone.now()))
        for row in found[: limit - ran]:
            taken = _take(row, now or timezone.now())
            if taken is not None:
                run(taken, now)
                ran += 1
        if not found or (woken_only and len(found) < BATCH and not wakeup.is_set()):
            break
    return ran


def prune(now: dt.datetime | None = None) -> int:
    """Delete finished tasks (done or failed) older than ``TASKS_KEEP_DAYS``; how many."""
    before = (now or timezone.now()) - dt.timedelta(days=_setting("TASKS_KEEP_DAYS", 14))
    deleted, _ = Task.objects.filter(state__in=(S.DONE, S.FAILED), updated_at__lt=before).delete()
    return deleted
