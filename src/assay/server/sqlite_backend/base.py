"""SQLite for the embedded default: Django's backend, with every writer queued on locks that wake it.

SQLite lets one connection write at a time. A second writer's ``BEGIN IMMEDIATE`` fails at once and
SQLite's busy handler retries it after sleeping 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms: it
does not wake when the lock frees, and a writer that has slept long keeps sleeping long while newcomers
take the lock. At a hundred submissions a second (a submit, a claim and a result: a write transaction
each, in two processes and many threads) those sleeps were a quarter of the server's request threads'
time while both cores sat half idle (BENCHMARKS.md, fifth session).

So a connection takes two locks before it writes, and gives them back when its transaction ends:
a lock per database file per process (threads queue on it and one is woken when it is released) and
an exclusive ``flock`` on a file beside the database (processes queue in the kernel, woken likewise).
The locks only order writers that SQLite would serialise anyway; SQLite's own locking still guards
the data, so a writer that is not queued here (the ``sqlite3`` shell, a backup tool, a statement this
module does not recognise as a write) is merely served by the busy handler as before. A thread that
waits on the process lock longer than the database's ``timeout`` goes on without it and gets SQLite's
"database is locked" as it would have.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from typing import Any

from django.db.backends.sqlite3 import base as django_sqlite
from django.db.backends.sqlite3 import creation as django_creation

log = logging.getLogger(__name__)

# First words of the statements that take SQLite's write lock when run outside a transaction.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriterQueue:
    """The writers of one database file in this process: a lock for its threads, then a ``flock`` on
    ``<database>-writers`` for the processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd = os.open(path + "-writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def take(self, timeout: float) -> bool:
        """Wait for this file's write turn; False (nothing held) after ``timeout`` seconds in this process."""
        if not self._threads.acquire(timeout=timeout):
            log.warning("waited %.0f s for SQLite's write turn in this process; going on without it", timeout)
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # the GIL is released while the kernel queues us
        except BaseException:
            self._threads.release()
            raise
        return True

    def give(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_queues: dict[tuple[int, str], WriterQueue] = {}
_queues_lock = threading.Lock()


def queue_for(path: str) -> WriterQueue:
    """This process's queue for ``path`` (a forked child opens its own: a ``flock`` is shared with the
    parent through an inherited descriptor, so it would not exclude the parent)."""
    key = (os.getpid(), os.path.realpath(path))
    queue = _queues.get(key)
    if queue is None:
        with _queues_lock:
            queue = _queues.get(key)
            if queue is None:
                queue = _queues[key] = WriterQueue(key[1])
    return queue


class QueuedConnection(sqlite3.Connection):
    """A SQLite connection that knows its place in the queue: ``turn`` is the :class:`Turn` it holds."""

    turn: Turn | None = None


class Turn:
    """One connection's use of its queue: held from ``BEGIN`` to the end of the transaction, or around
    one write statement run outside a transaction."""

    def __init__(self, queue: WriterQueue, timeout: float) -> None:
        self.queue = queue
        self.timeout = timeout
        self.held = False

    def take(self) -> None:
        if not self.held:
            self.held = self.queue.take(self.timeout)

    def give(self) -> None:
        if self.held:
            self.held = False
            self.queue.give()


class QueuedCursor(django_sqlite.SQLiteCursorWrapper):
    """Django's cursor; a write statement run outside a transaction (autocommit) takes the turn for the
    statement's own implicit transaction."""

    def execute(self, query: str, params: Any = None) -> Any:
        turn = autocommit_turn(self.connection, query)
        try:
            return super().execute(query, params)
        finally:
            give_after(self.connection, turn)

    def executemany(self, query: str, param_list: Any) -> Any:
        turn = autocommit_turn(self.connection, query)
        try:
            return super().executemany(query, param_list)
        finally:
            give_after(self.connection, turn)


def execute_raw(cursor: sqlite3.Cursor, sql: str, params: Any) -> None:
    """``sqlite3.Cursor.execute(cursor, sql, params)`` (SQL in SQLite's own ``?`` style), in turn when it is
    a write outside a transaction: for callers that skip Django's cursor (:mod:`assay.server.prepared`)."""
    turn = autocommit_turn(cursor.connection, sql)
    try:
        sqlite3.Cursor.execute(cursor, sql, params)
    finally:
        give_after(cursor.connection, turn)


def autocommit_turn(conn: sqlite3.Connection, sql: str) -> Turn | None:
    """The turn taken for ``sql`` when it is a write outside a transaction (SQLite takes its write lock for
    the statement alone), else None: inside a transaction the turn is held from ``BEGIN`` already."""
    turn = getattr(conn, "turn", None)
    if turn is None or turn.held or conn.in_transaction or not is_write(sql):
        return None
    turn.take()
    return turn


def give_after(conn: sqlite3.Connection, turn: Turn | None) -> None:
    if turn is not None and not conn.in_transaction:
        turn.give()


def is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class DatabaseCreation(django_creation.DatabaseCreation):
    """Django's test databases, whose ``-writers`` lock file goes with them (else one is left per test run)."""

    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)
        if test_database_name and not self.is_in_memory_db(test_database_name):
            try:
                os.remove(f"{test_database_name}-writers")
            except FileNotFoundError:
                pass


class DatabaseWrapper(django_sqlite.DatabaseWrapper):
    """Django's SQLite wrapper whose write transactions take the file's :class:`WriterQueue` turn."""

    creation_class = DatabaseCreation

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if not self.is_in_memory_db():
            params["factory"] = QueuedConnection
        return params

    def get_new_connection(self, conn_params: dict) -> sqlite3.Connection:
        conn = super().get_new_connection(conn_params)
        if isinstance(conn, QueuedConnection):
            turn = conn.turn = Turn(queue_for(conn_params["database"]), conn_params.get("timeout", 5.0))
            # a connection dropped without close() (its thread ended) must not keep the turn
            weakref.finalize(conn, turn.give)
        return conn

    def create_cursor(self, name: str | None = None) -> QueuedCursor:
        return self.connection.cursor(factory=QueuedCursor)

    def _start_transaction_under_autocommit(self) -> None:
        turn = getattr(self.connection, "turn", None)
        if turn is None:
            return super()._start_transaction_under_autocommit()
        turn.take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            turn.give()
            raise

    def _commit(self) -> None:
        try:
            return super()._commit()
        finally:
            self._give_when_ended()

    def _rollback(self) -> None:
        try:
            return super()._rollback()
        finally:
            self._give_when_ended()

    def _close(self) -> None:
        turn = getattr(self.connection, "turn", None)
        try:
            return super()._close()
        finally:
            if turn is not None:
                turn.give()

    def _give_when_ended(self) -> None:
        turn = getattr(self.connection, "turn", None)
        if turn is not None and not self.connection.in_transaction:
            turn.give()
