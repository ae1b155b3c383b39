"""The worker protocol without HTTP, for the worker that runs inside the server process.

:class:`InProcessClient` answers what :class:`assay.worker.WorkerClient` answers (``claim``, ``heartbeat``,
``release``, ``complete``, ``leave``, ``download``, ``kept``) by calling the very service functions the
worker views call (:mod:`assay.server.api.v1.worker`), with the same token check on every call
(:func:`~assay.server.submissions.services.tokens.authenticate_worker`: scope and revocation), so the
rules (lease, queue scope, exactly-once results) are the services' and hold on both paths. What it saves
is the HTTP round trip: no request parsing, JSON of the job and the report, or streaming of files — a
file is linked (or copied) from the server's storage into the worker's cache. Refusals are raised as the
HTTP client raises them, so :class:`assay.worker.Worker` cannot tell the two apart.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.db import DatabaseError, close_old_connections, connection

from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services import jobs, queue
from assay.server.submissions.services.errors import LeaseLost, SubmissionError
from assay.server.submissions.services.tokens import authenticate_worker
from assay.worker.client import LeaseLostError, ProtocolError, TokenRefused

log = logging.getLogger("assay.worker")
T = TypeVar("T")


class _Stopping(threading.Event):
    """The client's ``stopping`` flag: setting it also ends a claim waiting in this process (as the HTTP
    client's ``leave`` does), since that claim runs on the very thread that would have to notice."""

    def __init__(self, on_set: Callable[[], None]) -> None:
        super().__init__()
        self._on_set = on_set

    def set(self) -> None:
        super().set()
        self._on_set()


class InProcessClient:
    """Talks to this process's services with one worker token (the one the demo worker gets at start)."""

    base = "this server process (in-process transport)"

    def __init__(self, token: str) -> None:
        self.token = token
        self._claiming: tuple[WorkerToken, str] | None = None  # the claim waiting now, ended by stopping
        self.stopping = _Stopping(self._end_claim)

    def close(self) -> None:
        """Nothing to close: the services share the server's database connections."""

    def _auth(self) -> WorkerToken:
        row = authenticate_worker(self.token)
        if row is None:
            raise TokenRefused("the server refused the worker token: unknown or revoked worker token", 401)
        return row

    def _call(self, what: str, call: Callable[[WorkerToken], T]) -> T:
        """``call(token)`` with the views' refusals raised as the HTTP client raises them; a database
        failure is a ConnectionError (the worker waits and tries again, as for a server away)."""
        try:
            return call(self._auth())
        except LeaseLost as exc:
            raise LeaseLostError(exc.message) from None
        except SubmissionError as exc:
            raise ProtocolError(f"{what}: {exc.status} {exc.message}", exc.status) from None
        except DatabaseError as exc:
            connection.close()  # a broken connection is opened afresh by the next call
            raise ConnectionError(f"{what}: {type(exc).__name__}: {exc}") from None
        finally:
            if (
                threading.current_thread() not in (self._loop_thread, self._beat_thread)
                and not connection.in_atomic_block
            ):
                connection.close()  # a job's own thread (container downloads) ends soon: keep no connection

    _loop_thread: threading.Thread | None = None
    _beat_thread: threading.Thread | None = None

    def claim(
        self, worker_id: str, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> dict[str, Any] | None:
        """The next job (the dict the claim view answers), or None after ``wait`` seconds."""
        self._loop_thread = threading.current_thread()
        if not connection.in_atomic_block:  # (never inside a caller's transaction)
            close_old_connections()  # what a request's start does: drop a connection that died or aged out

        def claim(token: WorkerToken) -> dict[str, Any] | None:
            self._claiming = (token, worker_id)  # before looking at the flag: a stop in between still ends it
            try:
                if self.stopping.is_set():
                    return None
                sub = queue.claim_waiting(
                    token, worker_id, wait=max(wait, 0.0), containers=containers, code_bundles=code_bundles
                )
            finally:
                self._claiming = None
            return None if sub is None else jobs.job_payload(sub)

        return self._call("/claim", claim)

    def claim_several(
        self, worker_id: str, max_jobs: int, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> list[dict[str, Any]]:
        """Up to ``max_jobs`` jobs (the batched claim: :func:`queue.claim_several_waiting`), or []."""
        self._loop_thread = threading.current_thread()
        if not connection.in_atomic_block:
            close_old_connections()

        def claim(token: WorkerToken) -> list[dict[str, Any]]:
            self._claiming = (token, worker_id)
            try:
                if self.stopping.is_set():
                    return []
                subs = queue.claim_several_waiting(
                    token, worker_id, max_jobs, wait=max(wait, 0.0), containers=containers, code_bundles=code_bundles
                )
            finally:
                self._claiming = None
            return [jobs.job_payload(sub) for sub in subs]

        return self._call("/claim", claim)

    def _end_claim(self) -> None:
        claiming = self._claiming
        if claiming is not None:
            queue.leave(*claiming, everywhere=False)

    def leave(self, worker_id: str) -> None:
        try:
            self._call("/leave", lambda token: queue.leave(token, worker_id, everywhere=False))
        except (ConnectionError, ProtocolError) as exc:
            log.info("could not tell the server this worker is leaving: %s", exc)

    def heartbeat(self, submission_id: int, attempt: int) -> None:
        self._call(f"/jobs/{submission_id}/heartbeat", lambda token: queue.heartbeat(token, submission_id, attempt))

    def heartbeat_several(self, jobs: list[tuple[int, int]]) -> list[str]:
        """Every held job's lease in one call (:func:`queue.heartbeat_several`): the states, in order."""
        self._beat_thread = threading.current_thread()  # a worker's heartbeat thread: keeps its connection
        return self._call("/heartbeat", lambda token: [beat.state for beat in queue.heartbeat_several(token, jobs)])

    def thread_finished(self) -> None:
        """A thread of the worker that used this client ends: its database connection goes with it."""
        if not connection.in_atomic_block:
            connection.close()

    def release(self, submission_id: int, attempt: int) -> None:
        self._call(f"/jobs/{submission_id}/release", lambda token: queue.release(token, submission_id, attempt))

    def complete(self, submission_id: int, attempt: int, report: dict[str, Any]) -> dict[str, Any]:
        """Report a result through :func:`queue.complete`, checked as the complete view checks it."""

        def complete(token: WorkerToken) -> dict[str, Any]:
            completion = queue.Completion.from_report(attempt, report)
            sub = queue.complete(token, submission_id, completion)
            return {"status": sub.status, "failure_reason": sub.failure_reason}

        return self._call(f"/jobs/{submission_id}/complete", complete)

    def complete_several(self, reports: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any] | Exception]:
        """Several results through :func:`queue.complete_several`, answered in order as the HTTP client does."""

        def complete(token: WorkerToken) -> list[dict[str, Any] | Exception]:
            checked: list[tuple[int, queue.Completion | SubmissionError]] = []
            for sid, attempt, report in reports:
                try:
                    checked.append((sid, queue.Completion.from_report(attempt, report)))
                except SubmissionError as exc:
                    checked.append((sid, exc))
            return [
                _answer(sid, a) for (sid, _), a in zip(checked, queue.complete_several(token, checked), strict=True)
            ]

        return self._call("/complete", complete)

    def kept(self, submission_id: int, attempt: int) -> bool:
        """No outbox: a report either reaches the services or fails at once (the lease then runs out)."""
        return False

    def download(self, sha256: str, target: Path) -> Path:
        """The stored file with this hash, if a job this token holds needs it (the file view's rule),
        hard-linked into ``target`` (copied across file systems or from storage without local paths)."""
        field = self._call(f"download {sha256[:12]}", lambda token: jobs.file_for_worker(token, sha256.lower()))
        if field is None:
            raise ProtocolError(f"download {sha256}: 404 no file with this hash belongs to a job you hold", 404)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".part-{os.getpid()}-{threading.get_ident()}")
        part.unlink(missing_ok=True)
        try:
            try:
                os.link(field.path, part)
            except (OSError, NotImplementedError):  # another file system, or storage with no local path
                fetch = getattr(field.storage, "download_to", None)  # an object store streams straight in
                with open(part, "wb") as out:
                    if fetch is not None:
                        fetch(field.name, out)
                    else:
                        with field.open("rb") as src:
                            shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        return target


def _answer(submission_id: int, answer) -> dict[str, Any] | Exception:
    """One answer of a batch as the HTTP client gives it: the one-job answer, or the error it raises."""
    if isinstance(answer, LeaseLost):
        return LeaseLostError(answer.message)
    if isinstance(answer, SubmissionError):
        return ProtocolError(f"/jobs/{submission_id}/complete: {answer.status} {answer.message}", answer.status)
    return {"status": answer.status, "failure_reason": answer.failure_reason}
