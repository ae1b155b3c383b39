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
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from assay.server.prepared import Prepared

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
    now = timezone.now()
    run_after = now + dt.timedelta(seconds=max(0.0, delay))
    if key:
        row = Task(name=name, key=key, payload=payload, max_attempts=max_attempts, run_after=run_after)
        Task.objects.bulk_create([row], ignore_conflicts=True)  # INSERT … ON CONFLICT DO NOTHING / OR IGNORE
    else:
        _insert(name, payload, max_attempts, run_after, now)  # every result enqueues one
    transaction.on_commit(wakeup.set)


# A new task's INSERT, built once per database: every result writes one, and making a model instance and preparing
# its eleven fields one by one cost more than the statement. The columns are every field's but the id (checked when
# built, so a field added to Task cannot be left out); a new row's values are its defaults but for these.
_INSERT: dict[str, str] = {}
_NEW = ("name", "key", "payload", "state", "attempts", "max_attempts", "run_after", "lease_expires_at",
        "last_error", "created_at", "updated_at")  # fmt: skip


def _insert(name: str, payload: dict, max_attempts: int, run_after: dt.datetime, now: dt.datetime) -> None:
    sql = _INSERT.get(connection.alias)
    if sql is None:
        fields = [f.name for f in Task._meta.concrete_fields if not f.primary_key]
        if sorted(fields) != sorted(_NEW):
            raise RuntimeError(f"Task's fields {fields} are not the new row's {_NEW}")
        qn = connection.ops.quote_name
        columns = ", ".join(qn(Task._meta.get_field(f).column) for f in _NEW)
        sql = _INSERT[connection.alias] = (
            f"INSERT INTO {qn(Task._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(_NEW))})"
        )
    at = connection.ops.adapt_datetimefield_value
    stamp = at(now)
    params = [
        name, "", Task._meta.get_field("payload").get_db_prep_save(payload, connection), S.QUEUED.value, 0,
        max_attempts, at(run_after), None, "", stamp, stamp,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
    return run_several([row], now) == 1


def run_several(rows: list[Task], now: dt.datetime | None = None) -> int:
    """Run claimed tasks of one name (several only for a batch handler: one call for them all) and record each
    one's outcome on its own: the done ones by one ``UPDATE``, a failure retried or failed alone; how many
    succeeded."""
    registered = lookup(rows[0].name)
    outcomes: list[BaseException | None]
    try:
        if registered is None:
            raise Permanent(f"no task handler named {rows[0].name!r} is registered")
        if registered.batch:
            outcomes = list(registered.function([dict(row.payload) for row in rows]))
            if len(outcomes) != len(rows):
                raise RuntimeError(f"the batch handler answered {len(outcomes)} outcomes for {len(rows)} tasks")
        else:
            if len(rows) != 1:
                raise RuntimeError("only a batch handler runs several tasks at once")
            registered.function(dict(rows[0].payload))
            outcomes = [None]
    except Exception as exc:  # noqa: BLE001 - any failure of a handler is retried
        outcomes = [exc] * len(rows)
    done = [row for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
    _mark_done(done)
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome is not None:
            _record_failure(row, outcome, now)
    return len(done)


def _record_failure(row: Task, exc: BaseException, now: dt.datetime | None) -> None:
    """Queue ``row`` again after a backoff, or fail it (a :class:`Permanent` error, or its last attempt); only if
    the row is still ours: a runner whose lease ran out must not overwrite its successor's outcome."""
    permanent = isinstance(exc, Permanent)
    error = (f"{exc}" if permanent else f"{type(exc).__name__}: {exc}")[:MAX_ERROR]
    if not permanent:
        log.warning("task %s failed: %s", row, error, exc_info=exc)
    mine = (row.pk, S.RUNNING, row.attempts)
    if permanent or row.attempts >= row.max_attempts:
        _move(*mine, state=S.FAILED, lease_expires_at=None, last_error=error, updated_at=timezone.now())
        log.error("task %s gave up after %d attempts: %s", row, row.attempts, error)
    else:
        after = (now or timezone.now()) + dt.timedelta(seconds=backoff(row.attempts))
        _move(
            *mine, state=S.QUEUED, run_after=after, lease_expires_at=None, last_error=error, updated_at=timezone.now()
        )


# Several tasks' takes and done marks, as SQL built once per database and number of tasks (up to BATCH): each task
# still changes only if it is as its runner read it (its id, state and attempt count), as _move checks one.
_SEVERAL: dict[tuple[str, str, int], str] = {}


def _several_sql(kind: str, count: int) -> str:
    key = (connection.alias, kind, count)
    sql = _SEVERAL.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        table, state, attempts, lease, updated = (
            qn(Task._meta.db_table), qn("state"), qn("attempts"), qn("lease_expires_at"), qn("updated_at")
        )  # fmt: skip
        if kind == "take":
            each = f"({qn('id')} = %s AND {state} = %s AND {attempts} = %s)"
            sets = f"{state} = %s, {attempts} = {attempts} + 1, {lease} = %s, {updated} = %s"
            sql = f"UPDATE {table} SET {sets} WHERE {' OR '.join([each] * count)} RETURNING {qn('id')}"
        else:
            each = f"({qn('id')} = %s AND {attempts} = %s)"
            sets = f"{state} = %s, {lease} = NULL, {qn('last_error')} = '', {updated} = %s"
            sql = f"UPDATE {table} SET {sets} WHERE {state} = %s AND ({' OR '.join([each] * count)})"
        _SEVERAL[key] = sql
    return sql


def _mark_done(rows: list[Task]) -> None:
    """Mark ``rows`` (ours, run successfully) done by one ``UPDATE``; a row no longer ours is left as it is."""
    if not rows:
        return
    at = Task._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    params: list = [S.DONE, at, S.RUNNING]
    for row in rows:
        params += [row.pk, row.attempts]
    with connection.cursor() as cursor:
        cursor.execute(_several_sql("done", len(rows)), params)


def _take_several(rows: list[Task], now: dt.datetime) -> list[Task]:
    """:func:`_take` for several due rows of one name, by one conditional ``UPDATE … RETURNING``: each row is taken
    only if it is still as read (a row another runner took meanwhile is not returned, on PostgreSQL re-checked
    once that runner's statement commits), so each run is still claimed once. The rows taken, in their order.
    A row that had used its last attempt goes through :func:`_take` (failed, not run)."""
    if not connection.features.can_return_columns_from_insert or len(rows) == 1:
        return [taken for row in rows if (taken := _take(row, now)) is not None]  # SQLite before 3.35: one by one
    runnable = []
    for row in rows:
        if row.state == S.RUNNING and row.attempts >= row.max_attempts:
            _take(row, now)  # fails it
        else:
            runnable.append(row)
    if not runnable:
        return []
    registered = lookup(rows[0].name)
    lease = registered.lease_seconds if registered and registered.lease_seconds else None
    expires = now + dt.timedelta(seconds=lease or _setting("TASKS_LEASE_SECONDS", 600))
    prep = Task._meta.get_field("updated_at")
    params: list = [S.RUNNING, prep.get_db_prep_save(expires, connection), prep.get_db_prep_save(now, connection)]
    for row in runnable:
        params += [row.pk, row.state, row.attempts]
    with connection.cursor() as cursor:
        cursor.execute(_several_sql("take", len(runnable)), params)
        ids = {pk for (pk,) in cursor.fetchall()}
    taken = [row for row in runnable if row.pk in ids]
    for row in taken:
        row.state, row.attempts, row.lease_expires_at, row.updated_at = S.RUNNING, row.attempts + 1, expires, now
    return taken


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


def run_due(
    limit: int = 1000,
    now: dt.datetime | None = None,
    *,
    woken_only: bool = False,
    pause: Callable[[], object] | None = None,
) -> int:
    """Claim and run due tasks, oldest first, until none is due (or ``limit`` ran); how many ran. Tests call it
    to drain the queue synchronously (``now`` later than the present runs retries whose backoff has not
    passed yet).

    One read hands out up to :data:`BATCH` due rows, each then taken (:func:`_take`) just before it runs, so
    a backlog costs one read per batch, not per task. Consecutive rows of a batch handler's name are taken by
    one statement (:func:`_take_several`) and run by one call of it, their done marks one statement too.

    With ``woken_only`` (the runner, which cleared :data:`wakeup` before calling and waits on it after), a batch
    that came back short ends the drain unless a commit of this process set :data:`wakeup` since: nothing else
    was due when it was read, and what was committed in this process after sets :data:`wakeup` and starts the
    next round — so a runner keeping up with a stream of results reads no empty queue after every task. With
    ``pause`` as well (the runner: a wait of ``TASKS_GATHER_SECONDS``), a short batch that ran tasks is followed
    by ``pause()`` before that check, so the tasks of a stream of results gather and the next read hands them
    out together: a batch handler runs them as one call instead of one call each (a lone task still runs at
    once; one that comes just after a run waits at most the pause)."""
    ran = 0
    while ran < limit:
        before = ran
        found = _due_query(BATCH).instances(now=connection.ops.adapt_datetimefield_value(now or timezone.now()))
        for group in _groups(found[: limit - ran]):
            registered = lookup(group[0].name)
            if registered is not None and registered.batch:
                taken = _take_several(group, now or timezone.now())
                if taken:
                    run_several(taken, now)
                    ran += len(taken)
                continue
            for row in group:
                one = _take(row, now or timezone.now())
                if one is not None:
                    run(one, now)
                    ran += 1
        if woken_only and pause is not None and found and len(found) < BATCH and ran > before:
            pause()
        if not found or (woken_only and len(found) < BATCH and not wakeup.is_set()):
            break
    return ran


def _groups(rows: list[Task]) -> list[list[Task]]:
    """``rows`` cut into runs of consecutive rows of one name (a batch handler's run is one call), in order."""
    groups: list[list[Task]] = []
    for row in rows:
        if groups and groups[-1][0].name == row.name:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def prune(now: dt.datetime | None = None) -> int:
    """Delete finished tasks (done or failed) older than ``TASKS_KEEP_DAYS``; how many."""
    before = (now or timezone.now()) - dt.timedelta(days=_setting("TASKS_KEEP_DAYS", 14))
    deleted, _ = Task.objects.filter(state__in=(S.DONE, S.FAILED), updated_at__lt=before).delete()
    return deleted
