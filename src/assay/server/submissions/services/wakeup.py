"""Waiting claims are woken by new work instead of polling the queue.

A worker's long-poll claim that finds nothing sleeps on one condition per server process until
something may have made work claimable:

- in this process, :func:`announce` (called in the transaction that made a submission waiting, see
  ``queue.announce_saved`` and ``queue.release``) wakes every waiting claim when it commits;
- from other processes of a multi-process server: on PostgreSQL the same call sends ``NOTIFY`` in
  that transaction, and one ``LISTEN`` thread per process passes it on; on SQLite one thread per
  process reads ``PRAGMA data_version`` (it changes when another connection commits) every
  ``WORKER_QUEUE_WATCH_SECONDS``; either only while claims wait, at no cost when none does;
- on SQLite that watch is only the safety net: a process whose claims wait binds a Unix datagram socket
  in a folder per database (:func:`wake_folder`), and every commit of ``announce`` sends one byte to each
  other socket there (non-blocking, best effort), so ``assay demo``'s worker process wakes at once
  for a submission its server process accepted (the 0.1 s watch put ~50 ms on the overhead p50);
- a lease running out is no event: the claim itself looks again when the earliest lease of its queue
  expires, and at least every ``WORKER_CLAIM_RECHECK_SECONDS`` (a missed signal costs that, not work).

Before this, a waiting claim ran the claim query every 20 ms: ~19 % of a core per idle worker on
SQLite (BENCHMARKS.md, "idle workers").
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.db import connections, transaction

log = logging.getLogger("assay.server")

CHANNEL = "assay_queue"
LEFT_FOR = 300.0  # how long a worker that said it is leaving is remembered (its waiting claim may be late)
_LEAVE = "leave:"


class _Hub:
    """The process's waiting claims: a version bumped on every wake-up, and workers that left."""

    def __init__(self) -> None:
        lock = threading.Lock()
        self.cond = threading.Condition(lock)  # waiting claims sleep here
        self.busy = threading.Condition(lock)  # the SQLite watcher sleeps here while no claim waits
        self.version = 0
        self.waiters = 0
        self.left: dict[str, float] = {}
        self.watcher: threading.Thread | None = None
        self.watched: tuple = ()  # the database the watcher watches; a watcher of another one ends

    def bump(self) -> None:
        with self.cond:
            self.version += 1
            self.cond.notify_all()

    def leave(self, worker_id: str) -> None:
        now = time.monotonic()
        with self.cond:
            self.left = {w: t for w, t in self.left.items() if now - t < LEFT_FOR}
            self.left[worker_id] = now
            self.version += 1
            self.cond.notify_all()

    def has_left(self, worker_id: str) -> bool:
        with self.cond:
            at = self.left.get(worker_id)
            return at is not None and time.monotonic() - at < LEFT_FOR

    def wait(self, seen: int, timeout: float) -> None:
        with self.cond:
            self.waiters += 1
            if self.waiters == 1:
                self.busy.notify()
            try:
                self._watch()
                self.cond.wait_for(lambda: self.version != seen, timeout)
            finally:
                self.waiters -= 1

    def _watch(self) -> None:
        """Start this process's cross-process watcher once (called with the condition held)."""
        settings = connections["default"].settings_dict
        vendor = connections["default"].vendor
        watched = (vendor, settings.get("NAME"), settings.get("HOST"), settings.get("PORT"))
        if self.watcher is not None and self.watcher.is_alive() and self.watched == watched:
            return
        self.watched = watched  # a running watcher of another database sees this and ends
        if vendor == "postgresql":
            target = self._listen_postgres
        elif vendor == "sqlite" and not connections["default"].is_in_memory_db() and (_watch_every() > 0 or _sockets()):
            target = self._watch_sqlite
        else:
            return  # one process only: announce() and the re-checks are all there is
        self.watcher = threading.Thread(
            target=target, args=(settings, watched), name="assay-queue-watcher", daemon=True
        )
        self.watcher.start()

    def _watch_sqlite(self, settings: dict, watched: tuple) -> None:
        """Bump when another process pokes this one's socket, or (the safety net) when another connection
        (this process's or another's) commits; only while claims wait."""
        db = sqlite3.connect(settings["NAME"], timeout=30, check_same_thread=False)
        inbox = _Inbox(settings["NAME"]) if _sockets() else None
        try:
            seen = db.execute("PRAGMA data_version").fetchone()[0]
            while True:
                with self.cond:
                    self.busy.wait_for(lambda: self.waiters > 0)  # asleep, at no cost, while nobody waits
                    if self.watched != watched:
                        return  # the process now uses another database (tests switch it); its watcher took over
                every = _watch_every()
                if inbox is None:
                    time.sleep(every)
                elif inbox.wait(every if every > 0 else 1.0):
                    self.bump()  # another process committed new work
                    if every > 0:  # that commit is woken for: the safety net need not wake for it again
                        seen = db.execute("PRAGMA data_version").fetchone()[0]
                    continue
                if every <= 0:
                    continue
                version = db.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    seen = version
                    self.bump()
        except (sqlite3.Error, OSError):
            log.exception("the queue watcher stopped; waiting claims fall back to their re-checks")
        finally:
            db.close()
            if inbox is not None:
                inbox.close()

    def _listen_postgres(self, settings: dict, watched: tuple) -> None:
        """Pass on every process's NOTIFYs while claims wait; no connection is held while none does."""
        import psycopg

        params = connections["default"].get_connection_params()
        for key in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(key, None)
        while True:
            with self.cond:
                self.busy.wait_for(lambda: self.waiters > 0)
                if self.watched != watched:
                    return  # another database's listener took over
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.bump()  # anything sent before we listened
                    while self.waiters > 0:
                        for note in conn.notifies(timeout=1.0):
                            if note.payload.startswith(_LEAVE):
                                self.leave(note.payload[len(_LEAVE) :])
                            else:
                                self.bump()
            except psycopg.Error as exc:
                log.warning("queue listener: %s; listening again in 1 s", exc)
                time.sleep(1)


class _Inbox:
    """This process's wake-up socket in the database's folder, bound while the process lives."""

    def __init__(self, database: str) -> None:
        self.path = wake_folder(database) / f"{os.getpid()}.sock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a dead process's of the same pid
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))

    def wait(self, timeout: float) -> bool:
        """Whether a poke came within ``timeout`` seconds (every poke waiting is taken: one wake-up)."""
        self.sock.settimeout(timeout)
        try:
            self.sock.recv(64)
        except TimeoutError:
            return False
        self.sock.setblocking(False)
        try:
            while self.sock.recv(64):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


_folders: dict[tuple[str, str], Path] = {}  # by (VAR_DIR, database): tests change VAR_DIR
_sender: socket.socket | None = None


def wake_folder(database: str) -> Path:
    """Where the processes of one SQLite database keep their wake-up sockets: under ``VAR_DIR`` (or the
    temporary folder when that path would pass the ~100 bytes a socket's name may have)."""
    key = (str(django_settings.VAR_DIR), str(database))
    folder = _folders.get(key)
    if folder is None:
        digest = hashlib.sha256(str(database).encode()).hexdigest()[:12]
        folder = Path(key[0]) / "wake" / digest
        if len(str(folder)) > 80:
            folder = Path(tempfile.gettempdir()) / f"assay-wake-{os.getuid()}" / digest
        _folders[key] = folder
    return folder


def _poke(database: str) -> None:
    """One byte to every other process's wake-up socket of ``database``; never blocks, never raises."""
    global _sender
    try:
        entries = list(os.scandir(wake_folder(database)))
    except OSError:
        return  # no process has waited yet
    own = f"{os.getpid()}.sock"
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    for entry in entries:
        if entry.name == own or not entry.name.endswith(".sock"):
            continue
        try:
            _sender.sendto(b"w", entry.path)
        except ConnectionRefusedError:  # its process is gone
            try:
                os.unlink(entry.path)
            except OSError:
                pass
        except OSError:  # full (it has a wake-up waiting already), gone meanwhile
            pass


def _sockets() -> bool:
    return django_settings.WORKER_QUEUE_WAKE_SOCKETS and hasattr(socket, "AF_UNIX")


def _watch_every() -> float:
    """Seconds between two looks at SQLite's data_version: the cross-process latency it costs."""
    return django_settings.WORKER_QUEUE_WATCH_SECONDS


_hub = _Hub()


def version() -> int:
    """Read before looking at the queue, then :func:`wait` on it: a wake-up in between is not missed."""
    return _hub.version


def wait(seen: int, timeout: float) -> None:
    """Sleep until woken after ``seen`` or ``timeout`` seconds pass."""
    _hub.wait(seen, max(timeout, 0.0))


def announce(queue_name: str, using: str = "default") -> None:
    """Work may be claimable in ``queue_name`` once the current transaction commits: wake the claims."""
    if connections[using].vendor == "postgresql":
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue_name])  # delivered on commit
        transaction.on_commit(_hub.bump, using=using)
        return
    if connections[using].vendor == "sqlite" and _sockets():
        database = connections[using].settings_dict["NAME"]

        def committed() -> None:
            _hub.bump()
            _poke(database)

        transaction.on_commit(committed, using=using)
        return
    transaction.on_commit(_hub.bump, using=using)


def leave(worker_id: str, *, everywhere: bool = True) -> None:
    """The worker is going: its waiting claim (in any process, on PostgreSQL) ends without a job;
    ``everywhere=False``: in this process only (no statement, so any thread may call it)."""
    if everywhere and connections["default"].vendor == "postgresql":
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, _LEAVE + worker_id])
    _hub.leave(worker_id)


def has_left(worker_id: str) -> bool:
    return _hub.has_left(worker_id)
