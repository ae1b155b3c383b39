"""A test whose thread ends with its database connection open fails at its own teardown.

Django keeps one connection per thread. A thread that used the ORM and ends without closing its connection
leaves it to the garbage collector (the connection object sits in a reference cycle, so it may be freed much
later or never before the run ends); on PostgreSQL the process's test database then cannot be dropped at the
end of the run ("is being accessed by 1 other session"). Django announces every connection it opens
(``connection_created``); after each test, one that a thread other than the main one opened, still open while
that thread has ended, is such a leak: the test fails naming the thread and the test that opened it, and the
connection is closed so the next tests start clean. No query is made: a short list walk per test.

The live server's request threads are the other way a connection outlives its test: Django's threaded server
serves a kept-alive HTTP connection on one thread, which keeps its database connection (``CONN_MAX_AGE``) until
the client hangs up. A client the test never closed (an httpx client, a worker's ``WorkerClient``) so holds a
database session past the test, and the last one of a run keeps the test database from being dropped. The
check waits a moment for such a thread to end, then warns naming the test (a warning, not a failure, while
some e2e tests' worker clients are still left open; nothing is hung up, so the warning stays true). Other threads
still running keep their connections (a module's worker may use one in the next test) and are judged when they
end.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Opened:
    wrapper: weakref.ref  # the DatabaseWrapper of the thread
    thread: weakref.ref  # the thread that opened it
    thread_name: str
    test: str  # the test running when it was opened


KEEP_ALIVE_GRACE = 0.5  # seconds a request thread may take to end once its client hung up
_opened: list[Opened] = []
_warned: set[str] = set()  # tests already named for a kept-alive connection
_current = {"test": "(outside a test)"}
_listening = {"on": False}


def _created(sender: Any, connection: Any, **kwargs: Any) -> None:
    thread = threading.current_thread()
    if thread is not threading.main_thread():
        _opened.append(Opened(weakref.ref(connection), weakref.ref(thread), thread.name, _current["test"]))


def start_watching(test: str) -> None:
    """Before a test: connect the receiver once Django is set up (the Django-free suites never are)."""
    _current["test"] = test
    if _listening["on"]:
        return
    from django.conf import settings

    if not settings.configured:
        return
    from django.db.backends.signals import connection_created

    connection_created.connect(_created, weak=False, dispatch_uid="tests.connection_guard")
    _listening["on"] = True


def left_open() -> tuple[list[str], list[str]]:
    """The connections opened by threads that have ended and are still open (each closed here, once), and those
    that live-server threads keep for kept-alive HTTP connections after their test (each said once)."""
    leaks, kept, self_kept = [], [], []
    for opened in _opened:
        wrapper, thread = opened.wrapper(), opened.thread()
        if wrapper is None or wrapper.connection is None:
            continue  # closed, or freed with its connection
        if thread is not None and thread.is_alive():
            if opened.test not in _warned and _kept_alive(thread):
                _warned.add(opened.test)
                self_kept.append(
                    f"a live-server request thread ({opened.thread_name!r}, opened during {opened.test}) still serves "
                    "a kept-alive HTTP connection after the test, and keeps its database connection: close the "
                    "client that made it (httpx.Client.close(), a worker's client.close())"
                )
            kept.append(opened)
            continue
        leaks.append(
            f"thread {opened.thread_name!r} (opened during {opened.test}) ended with its {wrapper.alias!r} "
            "database connection open: close it in that thread (django.db.connections.close_all())"
        )
        wrapper.inc_thread_sharing()  # close it from this thread: the one that owned it is gone
        try:
            wrapper.close()
        finally:
            wrapper.dec_thread_sharing()
    _opened[:] = kept
    return leaks, self_kept


def _kept_alive(thread: threading.Thread) -> bool:
    """Whether ``thread`` serves an HTTP connection (Django's threaded server) that outlives a short wait."""
    if not thread.name.endswith("(process_request_thread)"):
        return False
    thread.join(KEEP_ALIVE_GRACE)  # a client that just hung up: its thread ends at once
    return thread.is_alive()


def check(item: pytest.Item) -> None:
    """After ``item``'s teardown: fail it when a thread's connection outlived the thread."""
    _current["test"] = "(between tests)"
    leaks, kept_alive = left_open()
    for message in kept_alive:
        item.warn(pytest.PytestWarning(message))
    if leaks:
        pytest.fail(f"{item.nodeid}: " + "; ".join(leaks), pytrace=False)
