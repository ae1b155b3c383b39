"""The worker ``assay demo`` runs inside the server process — over HTTP, like any other worker.

It gets a fresh platform token at each start (the previous demo token is revoked), so a demo
evaluates submissions with no other command and still exercises the real worker protocol.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import create_worker_token

NAME = "in-process worker"
log = logging.getLogger("assay.worker")


def start(server_url: str):
    """Start the worker thread; returns the Worker (``stop()`` ends it, ``thread`` is its thread)."""
    from assay.worker import Worker, WorkerClient

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per long-poll is noise
    WorkerToken.objects.filter(name=NAME, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _, token = create_worker_token(None, NAME)
    worker = Worker(WorkerClient(server_url, token), Path(settings.VAR_DIR) / "worker", poll_wait=10)

    def run() -> None:
        _wait_for_server(server_url)  # the server starts listening just after this thread starts
        worker.run()

    thread = threading.Thread(target=run, name="assay-in-process-worker", daemon=True)
    thread.start()
    worker.thread = thread
    log.info("in-process worker %s started against %s", worker.worker_id, server_url)
    return worker


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
