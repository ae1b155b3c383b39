"""The worker ``assay demo`` runs beside the server: here as a thread of the process it runs in.

``ASSAY_EMBEDDED_WORKER=process`` (the default) runs this same supervised thread in a child process of the
server (:mod:`assay.server.worker_process`), so requests and evaluation use two cores; ``thread`` runs it
in the server process itself. :func:`health` and :func:`serving` answer for either (:func:`register`).

It is the real :class:`~assay.worker.Worker` loop; by default it reaches the server through
:class:`~assay.server.inprocess_client.InProcessClient` (the worker services called directly, no HTTP:
issue 13 measured the HTTP round trips as most of a trivial submission's server CPU), and with
``ASSAY_INPROCESS_WORKER_TRANSPORT=http`` over HTTP like any remote worker. Either way it gets a fresh
platform token at each start (the previous demo token is revoked), and every call is checked with it.

A worker that dies (an exception escaping its loop) is started again after a short pause, so one
bad moment does not leave a demo with nobody evaluating; a refused token is the exception (an admin
revoked it: the worker stays stopped). ``/readyz`` asks :func:`health`: its ``workers`` check fails
while no worker thread is alive (``/healthz``, liveness, does not: the process still serves requests).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections
from django.utils import timezone

from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import create_worker_token, forget_cached_tokens

NAME = "in-process worker"
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before the 1st, 2nd… restart; the last repeats
log = logging.getLogger("assay.worker")

_current = None  # the one this process runs (an InProcessWorker or a WorkerProcess), for health()


class InProcessWorker:
    """A supervised worker thread: ``stop()`` ends it, ``thread`` is its thread, ``worker`` the current
    :class:`~assay.worker.Worker` (a new one after each restart: a stopped worker's pool is closed)."""

    def __init__(self, server_url: str, token: str, transport: str = "inprocess") -> None:
        from assay.worker import WorkerClient

        from .inprocess_client import InProcessClient

        self.server_url = server_url
        self.transport = transport
        self.client = InProcessClient(token) if transport == "inprocess" else WorkerClient(server_url, token)
        self.worker = self._new_worker()
        self.restarts = 0
        self.problem: str | None = None  # why no worker runs right now (None while one does)
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, name="assay-in-process-worker", daemon=True)

    def _new_worker(self):
        from assay.worker import Worker

        return Worker(
            self.client, Path(settings.VAR_DIR) / "worker", poll_wait=10, slots=settings.INPROCESS_WORKER_SLOTS
        )

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    def stop(self) -> None:
        self._stopping.set()
        self.worker.stop()
        unregister(self)

    def alive(self) -> bool:
        """A worker thread is serving (or about to: it is waiting for the server to listen)."""
        return self.thread.is_alive() and self.problem is None

    def _supervise(self) -> None:
        try:
            self._serve()
        finally:
            connections.close_all()  # this thread's own (the in-process transport's services ran on them)
            self.client.close()  # over HTTP: a kept-alive connection holds a server thread and its database session

    def _serve(self) -> None:
        from assay.worker.client import TokenRefused

        if self.transport == "http":
            _wait_for_server(self.server_url)  # the server starts listening just after this thread starts
        while not self._stopping.is_set():
            try:
                self.worker.run()
            except TokenRefused as exc:
                self.problem = f"the in-process worker stopped: {exc}"
                log.error("%s; not restarting it", self.problem)
                return
            except Exception as exc:  # noqa: BLE001 - whatever killed it, a new one takes over
                self._died(exc)
            else:
                return  # stopped on purpose
            delay = RESTART_DELAYS[min(self.restarts, len(RESTART_DELAYS) - 1)]
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self.worker = self._new_worker()
            self.problem = None
            log.warning("in-process worker restarted (restart %d)", self.restarts)

    def _died(self, exc: Exception) -> None:
        self.problem = f"the in-process worker died ({type(exc).__name__}: {exc}); restarting it"
        log.exception("the in-process worker died; restarting it")


def fresh_token() -> str:
    """A new platform token for the embedded worker; the previous ones are revoked (one demo worker)."""
    WorkerToken.objects.filter(name=NAME, revoked_at__isnull=True).update(revoked_at=timezone.now())
    forget_cached_tokens()
    _, token = create_worker_token(None, NAME)
    return token


def start(server_url: str, transport: str | None = None) -> InProcessWorker:
    """Start the supervised worker thread (see :class:`InProcessWorker`); ``transport`` defaults to
    ``settings.INPROCESS_WORKER_TRANSPORT``."""
    global _current
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per long-poll is noise
    supervised = InProcessWorker(server_url, fresh_token(), transport or settings.INPROCESS_WORKER_TRANSPORT)
    _current = supervised
    supervised.thread.start()
    log.info("in-process worker %s started (%s transport)", supervised.worker_id, supervised.transport)
    return supervised


def register(supervised) -> None:
    """``supervised`` is now this process's embedded worker, for :func:`health` (a thread or a process)."""
    global _current
    _current = supervised


def runs_tasks() -> bool:
    """Whether this process's embedded worker process runs the background tasks (so this one need not)."""
    return bool(getattr(_current, "tasks", False))


def unregister(supervised) -> None:
    """A worker stopped on purpose no longer counts for :func:`health`."""
    global _current
    if _current is supervised:
        _current = None


def health() -> str | None:
    """Why this process's in-process worker is not serving, or None (also when it runs none)."""
    supervised = _current
    if supervised is None:
        return None
    if supervised.alive():
        return None
    return supervised.problem or "the in-process worker is not running"


def serving() -> bool:
    """Whether this process runs an in-process worker that is serving now (``/readyz`` counts it as a worker)."""
    supervised = _current
    return supervised is not None and supervised.alive()


def where() -> str:
    """Where the serving embedded worker runs, for ``/readyz``."""
    pid = getattr(_current, "pid", None)
    return f"the in-process worker runs in process {pid}" if pid else "the in-process worker runs in this process"


def _wait_for_server(server_url: str, timeout: float = 30.0) -> None:
    """Until the server accepts connections, so the worker's first claim is not logged as a failure."""
    parts = urlsplit(server_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
