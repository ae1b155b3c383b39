"""The embedded worker in its own process: both sides, the supervisor in the server and the child's main.

A trivial submission costs the embedded default ~23 ms of CPU (issue 13), about half of it the worker's
claim and report and the background tasks they cause; in the server's one process that all shares one
GIL with the request threads, so the platform could not pass ~50 submissions/s on two idle-ish cores. So
``assay demo`` (``ASSAY_EMBEDDED_WORKER=process``, the default) runs the same
:class:`~assay.server.inprocess_worker.InProcessWorker` — the real worker loop over the in-process
transport, no HTTP — in a child process (``python -m assay.server.worker_process``) on the same database
and ``VAR_DIR``, with the background-task runner (e-mails, webhooks) beside it; the server process only
serves requests. ``ASSAY_EMBEDDED_WORKER=thread`` keeps the old picture (a thread of the server).

The child gets the worker token on its stdin (never on the command line or in the environment), and
stdin stays open for the child's life: when the server ends, even by ``kill -9``, the pipe closes and the
child stops (Linux also sends it SIGTERM at once, ``PR_SET_PDEATHSIG``). Ctrl-C reaches both (one process
group); either stops its worker cleanly. A child that dies, even by ``kill -9``, is started again after
:data:`~assay.server.inprocess_worker.RESTART_DELAYS`; its claimed jobs come back by the lease rules. A
refused token stops it for good (exit status :data:`TOKEN_REFUSED`), as in the thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
from urllib.parse import quote

from django.conf import settings
from django.db import connections

log = logging.getLogger("assay.worker")
TOKEN_REFUSED = 3  # the child's exit status when the server refused its token: not restarted
TASKS_DUE = b"t"  # sent on the child's stdin: the server committed a task


class WorkerProcess:
    """Supervises the child: ``stop()`` ends it, ``alive()`` says whether one serves, ``problem`` why not."""

    def __init__(self, server_url: str, token: str, transport: str, tasks: bool) -> None:
        self.server_url = server_url
        self.transport = transport
        self.tasks = tasks
        self._token = token
        self.restarts = 0
        self.problem: str | None = None
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._supervise, name="assay-worker-process", daemon=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None and self.problem is None

    def start(self) -> WorkerProcess:
        self._spawn()
        self.thread.start()
        atexit.register(self.stop)  # Ctrl-C ends the server by sys.exit: the child is waited for, not restarted
        if self.tasks:
            threading.Thread(target=self._forward_tasks, name="assay-tasks-forward", daemon=True).start()
        return self

    def _forward_tasks(self) -> None:
        """A task committed in this process (a sign-up e-mail) wakes the child's runner at once, through
        the child's stdin, instead of waiting for its next poll; asleep while none is committed."""
        from .tasks import queue as task_queue

        while True:
            task_queue.wakeup.wait()
            if self._stopping.is_set():
                return  # the set that woke us stays set, for whoever runs tasks here next
            task_queue.wakeup.clear()
            with self._lock:
                process = self.process
            try:
                if process is not None and process.stdin is not None and process.poll() is None:
                    process.stdin.write(TASKS_DUE)
                    process.stdin.flush()
            except (OSError, ValueError):
                pass  # the child is gone or going; its successor's first round runs what is due

    def stop(self, timeout: float = 30.0) -> None:
        """End the child (SIGTERM: it stops its worker and task runner) and do not start another."""
        from . import inprocess_worker

        self._stopping.set()
        inprocess_worker.unregister(self)
        if self.tasks:
            from .tasks import queue as task_queue

            task_queue.wakeup.set()  # the forwarding thread ends
        with self._lock:
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "assay.server.worker_process", self.server_url, self.transport]
        if self.tasks:
            command.append("--tasks")
        with self._lock:
            if self._stopping.is_set():
                return
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, env=child_environment())
            assert self.process.stdin is not None
            self.process.stdin.write((self._token + "\n").encode())  # first: before any TASKS_DUE
            self.process.stdin.flush()  # and kept open: its end tells the child that the server has gone
        log.info("embedded worker process %d started", self.process.pid)

    def _supervise(self) -> None:
        from .inprocess_worker import RESTART_DELAYS

        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            status = process.wait()
            if process.stdin is not None:
                process.stdin.close()
            if self._stopping.is_set():
                return
            if status == TOKEN_REFUSED:
                self.problem = "the in-process worker stopped: the server refused the worker token"
                log.error("%s; not restarting it", self.problem)
                return
            self.problem = f"the in-process worker died (its process ended with status {status}); restarting it"
            log.error("the embedded worker process %d ended with status %d; restarting it", process.pid, status)
            delay = RESTART_DELAYS[min(self.restarts, len(RESTART_DELAYS) - 1)]
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self._spawn()
            self.problem = None


def child_environment() -> dict[str, str]:
    """This process's environment plus what it runs on now (tests and ``assay demo`` may have changed the
    settings after reading it): the child must share the database, ``VAR_DIR`` and storage."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    env["ASSAY_VAR_DIR"] = str(settings.VAR_DIR)
    env["ASSAY_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["ASSAY_INPROCESS_WORKER_SLOTS"] = str(settings.INPROCESS_WORKER_SLOTS)
    env["ASSAY_SITE_URL"] = settings.SITE_URL
    url = database_url()
    if url:
        env["ASSAY_DATABASE_URL"] = url
    return env


def database_url() -> str | None:
    """The URL of the database this process uses (a test database's too), for the child."""
    db = connections["default"].settings_dict
    vendor = connections["default"].vendor
    if vendor == "sqlite":
        return f"sqlite:///{db['NAME']}" if not connections["default"].is_in_memory_db() else None
    if vendor == "postgresql":
        auth = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"
    return None


def start_embedded(server_url: str, mode: str | None = None):
    """The embedded worker as ``ASSAY_EMBEDDED_WORKER`` (or ``mode``) says: ``process``, a supervised child
    process that also runs the background tasks, or ``thread`` (:func:`inprocess_worker.start`). Either
    way with a fresh token (the previous one revoked). Returns the supervisor (``stop()``, ``alive()``)."""
    from . import inprocess_worker

    if (mode or settings.EMBEDDED_WORKER) == "thread":
        return inprocess_worker.start(server_url)
    token = inprocess_worker.fresh_token()
    supervised = WorkerProcess(server_url, token, settings.INPROCESS_WORKER_TRANSPORT, tasks=settings.TASKS_INPROCESS)
    inprocess_worker.register(supervised)
    return supervised.start()


# --- the child -------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: SIGTERM when the parent ends (the stdin watcher covers the rest, a bit later)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _warm_up() -> None:
    """Import now what the first results' work would import on the way (the URL conf, and with it every view
    and service module): a profile of the overhead row found the child's task thread importing and compiling
    modules (and reversing its first URLs) through its first dozens of results."""
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 - populating it imports every view module


def main(argv: list[str]) -> int:
    """``python -m assay.server.worker_process URL TRANSPORT [--tasks]``, the token on stdin."""
    _die_with_parent()
    parent = os.getppid()
    line = b""
    while not line.endswith(b"\n") and (byte := os.read(0, 1)):  # unbuffered: what follows is watch_parent's
        line += byte
    token = line.decode().strip()
    if not token or os.getppid() != parent or parent == 1:
        return 0  # the server went before it said anything
    server_url, transport = argv[0], argv[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    import django

    django.setup()
    _warm_up()
    from . import inprocess_worker
    from .tasks import runner

    supervised = inprocess_worker.InProcessWorker(server_url, token, transport)
    tasks = runner.start() if "--tasks" in argv else None

    def stop() -> None:
        supervised.stop()
        if tasks is not None:
            tasks.stop()

    asked: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Only note it: a handler runs inside whatever the main thread was doing, maybe holding a lock that
        # stop() takes (a second SIGTERM, e.g. the kernel's after the server's, deadlocked the child so).
        asked.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a server started in the background ignores
        signal.signal(signal.SIGINT, on_signal)  # Ctrl-C (and its child inherits that): so must the child,
        # or a SIGINT to the group stops only the child, which its server then starts again

    def watch_parent() -> None:
        from .tasks import queue as task_queue

        while data := os.read(0, 4096):  # not sys.stdin: its buffer's lock would trouble the interpreter's exit
            if TASKS_DUE in data:
                task_queue.wakeup.set()
        stop()  # end of file: the server is gone

    threading.Thread(target=watch_parent, name="assay-parent-watch", daemon=True).start()
    supervised.thread.start()
    log.info("embedded worker %s serving in process %d", supervised.worker_id, os.getpid())
    stopped = False
    while supervised.thread.is_alive():  # timed: a signal the kernel gave another thread is seen within 0.5 s
        supervised.thread.join(0.5)
        if asked and not stopped:
            stopped = True
            stop()
    if tasks is not None:
        tasks.stop()
        tasks.thread.join(30)
    if supervised.problem and supervised.problem.startswith("the in-process worker stopped"):
        return TOKEN_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
