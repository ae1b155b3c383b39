"""The embedded default's SQLite backend queues writers on locks that wake them (``assay.server.sqlite_backend``):
the turn is held exactly while a connection writes — from ``BEGIN`` to the end of its transaction, or around one
write statement in autocommit — so a second writer waits in this process's lock or in the kernel's ``flock``, not in
SQLite's sleeping busy handler; and no way a transaction ends (commit, rollback, close, a dropped connection)
keeps it."""

from __future__ import annotations

import fcntl
import gc
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.db import transaction
from django.db.utils import ConnectionHandler, OperationalError

from assay.server.sqlite_backend import base as backend


@pytest.fixture
def db_file(tmp_path, django_db_blocker, monkeypatch):
    """A fresh SQLite file with one table, and a factory of connections to it through the backend, found by
    ``transaction.atomic(using=<alias>)``."""
    path = tmp_path / "w.sqlite3"
    handler = ConnectionHandler({})
    made = []
    django_connection = transaction.get_connection
    monkeypatch.setattr(
        transaction,
        "get_connection",
        lambda using=None: handler[using] if using in handler else django_connection(using),
    )

    def connect(alias: str, timeout: float = 30):
        handler.settings[alias] = {
            "ENGINE": "assay.server.sqlite_backend",
            "NAME": str(path),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout, "init_command": "PRAGMA journal_mode=WAL"},
        }
        handler.settings = handler.configure_settings(handler.settings)
        wrapper = handler[alias]
        made.append(wrapper)  # (closed at the end when made in this thread; others close their own)
        return wrapper

    with django_db_blocker.unblock():
        first = connect("first")
        first.cursor().execute("CREATE TABLE t (x INTEGER)")
        yield path, connect
        for wrapper in made:
            if wrapper._thread_ident == threading.get_ident():
                wrapper.close()


def flock_free(path: Path) -> bool:
    """Whether ``<path>-writers`` can be locked by another open file description (so no writer holds it)."""
    fd = os.open(f"{path}-writers", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a lock this descriptor took
    return True


def begin(wrapper) -> None:
    wrapper.ensure_connection()
    wrapper._start_transaction_under_autocommit()


def test_the_turn_is_held_from_begin_to_commit_or_rollback(db_file):
    path, connect = db_file
    w = connect("w")
    for end in (w.commit, w.rollback):
        begin(w)
        w.cursor().execute("INSERT INTO t VALUES (1)")
        assert w.connection.turn.held and not flock_free(path)
        end()
        assert not w.connection.turn.held and flock_free(path)


def test_a_failed_begin_and_a_closed_connection_give_the_turn_back(db_file):
    path, connect = db_file
    w = connect("w")
    begin(w)
    w.close()  # mid-transaction: SQLite rolls back, the turn goes with it
    assert flock_free(path)
    w.ensure_connection()
    w.connection.execute("BEGIN")  # a transaction the backend did not start: its own BEGIN now fails
    with pytest.raises(OperationalError):
        w._start_transaction_under_autocommit()
    assert not w.connection.turn.held and flock_free(path)
    w.connection.rollback()


def test_a_connection_dropped_without_close_gives_the_turn_back(db_file):
    path, connect = db_file
    w = connect("w")
    begin(w)
    raw = w.connection
    w.connection = None  # as a finished thread drops its connection: nobody calls close()
    del raw
    gc.collect()
    assert flock_free(path)


def test_an_autocommit_write_holds_the_turn_for_its_statement_only(db_file):
    path, connect = db_file
    w = connect("w")
    w.ensure_connection()
    seen = []
    w.connection.create_function("probe", 0, lambda: seen.append(flock_free(path)) or 1)
    w.cursor().execute("INSERT INTO t VALUES (probe())")  # a write: run in turn
    w.cursor().execute("SELECT probe()")  # a read: not queued
    assert seen == [False, True]
    assert not w.connection.turn.held and flock_free(path)


def test_statements_inside_a_transaction_do_not_take_the_turn_again(db_file):
    path, connect = db_file
    w = connect("w")
    with transaction.atomic(using="w"):
        w.cursor().execute("INSERT INTO t VALUES (1)")
        with transaction.atomic(using="w"):  # a savepoint
            w.cursor().execute("UPDATE t SET x = 2")
        assert w.connection.turn.held
    assert not w.connection.turn.held and flock_free(path)
    assert w.cursor().execute("SELECT x FROM t").fetchall() == [(2,)]


def test_a_second_thread_waits_in_the_process_lock_until_the_first_commits(db_file):
    path, connect = db_file
    a = connect("a")
    inside, done = threading.Event(), threading.Event()
    errors = []

    def second():
        b = connect("b")
        try:
            assert inside.wait(30)
            with transaction.atomic(using="b"):
                b.cursor().execute("INSERT INTO t VALUES (2)")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()
            b.close()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with transaction.atomic(using="a"):
            a.cursor().execute("INSERT INTO t VALUES (1)")
            inside.set()
            # the second thread is queued on the process lock: it cannot be anywhere else while this is held
            assert backend.queue_for(str(path))._threads.locked()
            assert not done.is_set()
    finally:
        inside.set()
        thread.join()
    assert errors == []
    assert sorted(a.cursor().execute("SELECT x FROM t").fetchall()) == [(1,), (2,)]


def test_another_process_waits_in_the_kernel_not_in_sqlites_busy_handler(db_file, tmp_path):
    """With SQLite's own ``timeout`` at 10 ms, a writer that meets another process's transaction held for
    longer would fail with "database is locked"; queued on the ``flock``, it waits for the commit."""
    path, connect = db_file
    holder = textwrap.dedent(
        f"""
        import sqlite3, sys, time, fcntl, os
        fd = os.open({str(path)!r} + "-writers", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)   # as the backend takes its turn, then BEGIN IMMEDIATE
        c = sqlite3.connect({str(path)!r}, isolation_level=None)
        c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO t VALUES (7)")
        print("holding", flush=True)
        time.sleep(0.5)
        c.execute("COMMIT"); fcntl.flock(fd, fcntl.LOCK_UN)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        w = connect("w", timeout=0.01)
        with transaction.atomic(using="w"):
            w.cursor().execute("INSERT INTO t VALUES (8)")
    finally:
        proc.wait(timeout=30)
    assert sorted(w.cursor().execute("SELECT x FROM t").fetchall()) == [(7,), (8,)]


def test_a_thread_that_waits_past_the_timeout_goes_on_to_sqlites_own_answer(db_file, caplog):
    path, connect = db_file
    queue = backend.queue_for(str(path))
    assert queue._threads.acquire()  # a turn that is never given back, in this process
    try:
        w = connect("w", timeout=0.05)
        with transaction.atomic(using="w"):  # nobody holds SQLite's lock: it proceeds, unqueued
            w.cursor().execute("INSERT INTO t VALUES (1)")
        assert "going on without it" in caplog.text
    finally:
        queue._threads.release()


def test_a_forked_child_has_its_own_queue(db_file, monkeypatch):
    path, _ = db_file
    parent = backend.queue_for(str(path))
    monkeypatch.setattr(backend.os, "getpid", lambda: -1)
    child = backend.queue_for(str(path))
    assert child is not parent and child._fd != parent._fd


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t set x = 1", True),
        ("\nDELETE FROM t", True),
        ("REPLACE INTO t VALUES (1)", True),
        ("SELECT * FROM t", False),
        ("BEGIN DEFERRED", False),
        ("PRAGMA journal_mode=WAL", False),
    ],
)
def test_which_statements_are_writes(sql, write):
    assert backend.is_write(sql) is write


@pytest.mark.django_db
def test_the_embedded_default_queues_its_writers():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the default database is not SQLite")
    connection.ensure_connection()
    assert isinstance(connection.connection, backend.QueuedConnection)


def test_a_test_database_takes_its_lock_file_with_it(db_file):
    path, connect = db_file
    w = connect("w")
    w.ensure_connection()
    assert Path(f"{path}-writers").exists()
    w.close()
    w.creation._destroy_test_db(str(path), verbosity=0)
    assert not path.exists() and not Path(f"{path}-writers").exists()
