"""One job's runs, stoppable on their own: :class:`RunHandle`.

A worker with several slots runs several jobs at once; when the server says one of them ended (the host
cancelled it, or another attempt completed), only that job's work may be killed. Whatever runs a job
(a container on Docker, a Kubernetes Job, a code bundle's process tree, a warm evaluator) attaches its
own kill to the job's handle while it runs, so :meth:`RunHandle.stop` ends exactly those, and a run that
starts after the stop is killed as it is attached (or not started at all: see :attr:`RunHandle.stopped`).
The engine-wide ``stop_all`` stays for a worker that shuts down.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger("assay.evaluation")

#: The reason a stopped run reports (never shown to anyone: a stopped job's outcome is not reported).
STOPPED = "stopped by the worker (the job ended)"


class RunHandle:
    """The kills of one job's runs in progress; thread-safe. ``name`` says which job, in logs."""

    def __init__(self, name: str = "run") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._stopped = False
        self._kills: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Kill every run attached now, and every run attached later as it is attached. Never raises."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            kills = list(self._kills.values())
        if kills:
            log.info("stopping %s (%d run(s))", self.name, len(kills))
        for kill in kills:
            _call(kill, self.name)

    def attach(self, kill: Callable[[], None]) -> Callable[[], None]:
        """Have :meth:`stop` call ``kill``; returns what detaches it (once the run is over). Attached to a
        stopped handle, ``kill`` is called at once: the run started after the stop and ends now."""
        with self._lock:
            if not self._stopped:
                key = next(self._ids)
                self._kills[key] = kill
                return lambda: self._detach(key)
        _call(kill, self.name)
        return lambda: None

    @contextlib.contextmanager
    def attached(self, kill: Callable[[], None]) -> Iterator[None]:
        detach = self.attach(kill)
        try:
            yield
        finally:
            detach()

    def _detach(self, key: int) -> None:
        with self._lock:
            self._kills.pop(key, None)


def attached(handle: RunHandle | None, kill: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
    """``handle.attached(kill)``, or nothing when the run has no handle (it is then stopped only with all)."""
    return handle.attached(kill) if handle is not None else contextlib.nullcontext()


def _call(kill: Callable[[], None], name: str) -> None:
    try:
        kill()
    except Exception:  # noqa: BLE001 - one run that cannot be killed must not keep the others alive
        log.exception("could not stop a run of %s", name)
