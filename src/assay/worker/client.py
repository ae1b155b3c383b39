"""HTTP client of the worker protocol (``/api/v1/worker/…``), with retries that lose nothing.

Every request that may fail for a moment (a dropped connection, a 5xx, a 429 or 503 with
``Retry-After``) is retried with backoff for up to ``retry_for`` seconds; refusals (other 4xx) never
are. Stopping (:attr:`WorkerClient.stopping`) ends every wait at once: backoff pauses, a long-poll
claim (the server is asked to end it) and downloads raise :class:`WorkerStopped`. A result that could
not be reported (the worker stopped, or the server stayed away) is kept in :attr:`WorkerClient.outbox`
and sent by :meth:`WorkerClient.send_kept` when the worker goes on or starts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

log = logging.getLogger("assay.worker")
T = TypeVar("T")

CLAIM_GRACE = 3.0  # seconds a stopping worker waits for the claim the server was asked to end
SHORT = httpx.Timeout(10.0, connect=5.0)  # heartbeats: one try, never a long block
PARTING = httpx.Timeout(5.0, connect=2.0)  # release and leave, sent while stopping: a stop takes seconds
MAX_BAD_HASHES = 3  # whole downloads whose bytes hash wrong before giving up (a corrupting proxy, not a blip)


class LeaseLostError(Exception):
    """The server no longer lets this worker hold the job (cancelled, re-claimed or finished)."""


class ProtocolError(Exception):
    """The server refused a request in a way retrying cannot fix (bad token, bad request)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TokenRefused(ProtocolError):
    """The server refused the worker token (401/403, e.g. revoked): the worker must stop, not retry."""


class WorkerStopped(BaseException):  # noqa: N818 - a signal to unwind, like KeyboardInterrupt
    """The worker is stopping: raised out of waits so a job in hand is handed back, never failed.

    A BaseException (as asyncio's CancelledError) so the ``except Exception`` that turns a job's
    problems into a reported failure lets it through.
    """


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's own hint, in seconds."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.retry_after = retry_after


class WorkerClient:
    """Talks to one Assay server with one worker token."""

    def __init__(self, server: str, token: str, *, timeout: float = 60.0, retry_for: float = 300.0) -> None:
        self.base = server.rstrip("/") + "/api/v1/worker"
        self.retry_for = retry_for
        self.stopping = threading.Event()
        self.outbox: Path | None = None  # where unsent results wait (the worker sets it under its workdir)
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "User-Agent": "assay-worker"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self.http.close()

    def _retrying(self, what: str, attempt: Callable[[], T], *, retry: bool = True) -> T:
        """``attempt()`` until it succeeds, retrying :class:`_Transient` failures for ``retry_for`` seconds."""
        deadline = time.monotonic() + (self.retry_for if retry else 0)
        delay = 0.5
        while True:
            try:
                return attempt()
            except httpx.TransportError as exc:
                problem, hint = f"{type(exc).__name__}: {exc}", None
            except _Transient as exc:
                problem, hint = str(exc), exc.retry_after
            pause = min(hint, 60.0) if hint is not None else delay
            if time.monotonic() + pause > deadline:
                raise ConnectionError(f"{what}: {problem}")
            log.warning("%s failed (%s); retrying in %.1f s", what, problem, pause)
            if self.stopping.wait(pause):
                raise WorkerStopped(what)
            delay = min(delay * 2, 10.0)

    def _post(
        self,
        path: str,
        payload: dict,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
        interruptible: bool = True,
        on_stop: Callable[[], None] | None = None,
        grace: float = 0.0,
    ) -> httpx.Response:
        """POST with retries on connection errors, 5xx and 429 for up to ``retry_for`` seconds.

        ``interruptible``: a stop abandons the request in flight (WorkerStopped; ``on_stop`` and
        ``grace`` as in :meth:`_interruptible`); the parting requests sent while stopping (release,
        leave) are not, and have short timeouts instead."""

        def attempt() -> httpx.Response:
            response = self.http.post(self.base + path, json=payload, timeout=timeout or httpx.USE_CLIENT_DEFAULT)
            return self._check(_transient(response))

        if not interruptible:
            return self._retrying(path, attempt, retry=retry)
        return self._retrying(path, lambda: self._interruptible(attempt, on_stop=on_stop, grace=grace), retry=retry)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code == 409:
            raise LeaseLostError(_message(response))
        if response.status_code in (401, 403):
            raise TokenRefused(f"the server refused the worker token: {_message(response)}", response.status_code)
        if response.status_code >= 400:
            raise ProtocolError(
                f"{response.request.url.path}: {response.status_code} {_message(response)}", response.status_code
            )
        return response

    def claim(
        self, worker_id: str, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> dict[str, Any] | None:
        """The next job, or None after ``wait`` seconds; ``containers`` asks for image jobs too,
        ``code_bundles`` for code bundles (run in this worker's bubblewrap sandbox).

        The long-poll runs on a helper thread so that stopping need not wait for it: the server is
        asked to end it (``leave``) and its answer, a job included, is still taken if it comes within
        :data:`CLAIM_GRACE`; otherwise :class:`WorkerStopped` is raised and the request abandoned.
        """
        payload = {"worker_id": worker_id, "wait": wait, "containers": containers, "code_bundles": code_bundles}
        response = self._post(
            "/claim", payload, timeout=wait + 30, on_stop=lambda: self.leave(worker_id), grace=CLAIM_GRACE
        )
        return None if response.status_code == 204 else response.json()["job"]

    def claim_several(
        self, worker_id: str, max_jobs: int, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> list[dict[str, Any]]:
        """Up to ``max_jobs`` jobs in one request (the batched protocol; as soon as there is one, never
        waiting for more), or [] after ``wait`` seconds; stopping as :meth:`claim`."""
        payload = {
            "worker_id": worker_id,
            "wait": wait,
            "containers": containers,
            "code_bundles": code_bundles,
            "max_jobs": max_jobs,
        }
        response = self._post(
            "/claim", payload, timeout=wait + 30, on_stop=lambda: self.leave(worker_id), grace=CLAIM_GRACE
        )
        return [] if response.status_code == 204 else list(response.json()["jobs"])

    def leave(self, worker_id: str) -> None:
        """Tell the server this worker is going: its waiting claim ends without taking a job. Best effort."""
        try:
            self._post("/leave", {"worker_id": worker_id}, timeout=PARTING, retry=False, interruptible=False)
        except (ConnectionError, ProtocolError, LeaseLostError) as exc:
            log.info("could not tell the server this worker is leaving: %s", exc)

    def heartbeat(self, submission_id: int, attempt: int) -> None:
        """One try (the next one comes soon); given up at once (WorkerStopped) when stopping."""
        self._post(f"/jobs/{submission_id}/heartbeat", {"attempt": attempt}, timeout=SHORT, retry=False)

    def heartbeat_several(self, jobs: list[tuple[int, int]]) -> list[str]:
        """One heartbeat for every job held (``(submission_id, attempt)``), one try as :meth:`heartbeat`:
        the server's word for each, in order: "extended", "lost" (offered again; a result is still taken
        if it comes first) or "ended" (cancelled or completed: stop it). A server without the batched
        route (404) is asked job by job, as it was before, and a job it refuses is "ended"."""
        if self._batched_heartbeats:
            body = {"jobs": [{"submission_id": sid, "attempt": attempt} for sid, attempt in jobs]}
            try:
                answer = self._post("/heartbeat", body, timeout=SHORT, retry=False).json()
                return [str(beat["state"]) for beat in answer["jobs"]]
            except ProtocolError as exc:
                if exc.status != 404 or isinstance(exc, TokenRefused):
                    raise
                log.info("the server has no batched heartbeat; heartbeating job by job")
                self._batched_heartbeats = False
        return heartbeat_each(self, jobs)

    _batched_heartbeats = True  # until a server answers 404 to it (one older than the route)

    def release(self, submission_id: int, attempt: int) -> None:
        path = f"/jobs/{submission_id}/release"
        self._post(path, {"attempt": attempt}, timeout=PARTING, retry=False, interruptible=False)

    def complete(self, submission_id: int, attempt: int, report: dict[str, Any]) -> dict[str, Any]:
        """Report a result, retrying through a server outage: the server still takes it after the lease
        ran out, as long as no later attempt has completed. Not sent when the worker stops or the
        retries run out: then it is kept in the outbox (see :meth:`send_kept`) before the error goes on."""
        try:
            return self._post(f"/jobs/{submission_id}/complete", {"attempt": attempt, **report}).json()
        except (WorkerStopped, ConnectionError):
            self._keep(submission_id, attempt, report)
            raise

    def complete_several(self, reports: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any] | Exception]:
        """Report several results (``(submission_id, attempt, report)``) in one request; answered in order
        with what :meth:`complete` returns or raises for each (:class:`LeaseLostError`, :class:`ProtocolError`).
        Retried and kept in the outbox as :meth:`complete` (all of them: none was taken)."""
        if len(reports) == 1:  # the one-job route: any server takes it
            sid, attempt, report = reports[0]
            try:
                return [self.complete(sid, attempt, report)]
            except (LeaseLostError, ProtocolError) as exc:
                if isinstance(exc, TokenRefused):
                    raise
                return [exc]
        body = {"results": [{"submission_id": sid, "attempt": attempt, **report} for sid, attempt, report in reports]}
        try:
            answers = self._post("/complete", body).json()["results"]
        except (WorkerStopped, ConnectionError):
            for sid, attempt, report in reports:
                self._keep(sid, attempt, report)
            raise
        return [_several_answer(answer) for answer in answers]

    def kept(self, submission_id: int, attempt: int) -> bool:
        """Whether this attempt's result waits in the outbox."""
        return self.outbox is not None and (self.outbox / f"{submission_id}-{attempt}.json").exists()

    def _keep(self, submission_id: int, attempt: int, report: dict[str, Any]) -> None:
        if self.outbox is None:
            return
        self.outbox.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.outbox, prefix=".part-")
        with os.fdopen(fd, "w") as out:
            json.dump({"submission_id": submission_id, "attempt": attempt, "report": report}, out)
        os.replace(tmp, self.outbox / f"{submission_id}-{attempt}.json")
        log.warning(
            "kept the result of submission %s (attempt %s) to send when the server answers", submission_id, attempt
        )

    def send_kept(self) -> int:
        """Send the outbox's results, one try each; returns how many the server answered (taken or refused,
        e.g. because a later attempt completed meanwhile). Stops at the first that cannot reach it."""
        if self.outbox is None or not self.outbox.is_dir():
            return 0
        answered = 0
        for path in sorted(self.outbox.glob("[0-9]*-[0-9]*.json")):
            try:
                kept = json.loads(path.read_text())
                sid, attempt, report = int(kept["submission_id"]), int(kept["attempt"]), dict(kept["report"])
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a damaged file must not stop the worker
                log.error("dropping the unreadable kept result %s: %s", path.name, exc)
                path.unlink(missing_ok=True)
                continue
            try:
                answer = self._post(f"/jobs/{sid}/complete", {"attempt": attempt, **report}, timeout=SHORT, retry=False)
                log.info("sent the kept result of submission %s: %s", sid, answer.json().get("status"))
            except ConnectionError:
                return answered
            except TokenRefused:
                raise
            except (LeaseLostError, ProtocolError) as exc:
                log.warning("the kept result of submission %s was not taken: %s", sid, exc)
            path.unlink()
            answered += 1
        return answered

    def download(self, sha256: str, target: Path) -> Path:
        """Fetch the file with this hash to ``target``, checking the hash before it appears there.

        Dropped connections, 5xx and 429 are retried like any request (each try starts over and is
        hashed again); a 4xx refusal is not. Stopping abandons the download at once.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        bad_hashes = 0

        def attempt() -> Path:
            nonlocal bad_hashes
            try:
                return self._interruptible(lambda: self._download_once(sha256, target))
            except _BadHash as exc:
                bad_hashes += 1
                if bad_hashes >= MAX_BAD_HASHES:
                    raise ProtocolError(f"download {sha256}: {exc}") from None
                raise _Transient(str(exc)) from None

        return self._retrying(f"download {sha256[:12]}", attempt)

    def _download_once(self, sha256: str, target: Path) -> Path:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, self._file_response(sha256) as response:
                if response.status_code != 200:
                    response.read()
                    self._check(_transient(response))
                    raise ProtocolError(f"download {sha256}: HTTP {response.status_code}", response.status_code)
                for chunk in response.iter_bytes(1024 * 1024):
                    if self.stopping.is_set():
                        raise WorkerStopped(f"download {sha256}")
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise _BadHash(f"the bytes received hash to {digest.hexdigest()}")
            os.replace(tmp, target)
            return target
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @contextlib.contextmanager
    def _file_response(self, sha256: str) -> Iterator[httpx.Response]:
        """The response carrying the file's bytes: the server's own, or, when it redirects to its object
        store's presigned URL, the store's (fetched without the worker token: the URL's signature is the
        credential, and the token must never reach another host)."""
        with self.http.stream("GET", f"{self.base}/files/{sha256}") as response:
            location = response.headers.get("location", "")
            if response.status_code not in (302, 303, 307) or not location:
                yield response
                return
            response.read()
            url = response.url.join(location)
        with httpx.stream("GET", url, timeout=self.http.timeout, headers={"User-Agent": "assay-worker"}) as stored:
            yield stored

    def _interruptible(self, call: Callable[[], T], *, on_stop: Callable[[], None] | None = None,
                       grace: float = 0.0) -> T:  # fmt: skip
        """``call()`` on a helper thread, given up (WorkerStopped) when stopping; its result or error otherwise."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="assay-worker-request", daemon=True).start()
        while not done.wait(0.1):
            if self.stopping.is_set():
                if on_stop is not None:  # on its own thread: the grace counts from now, whatever it takes
                    threading.Thread(target=on_stop, name="assay-worker-parting", daemon=True).start()
                if not done.wait(grace):
                    raise WorkerStopped("request abandoned")
                break
        if "error" in box:
            raise box["error"]
        return box["value"]


class _BadHash(Exception):
    pass


class Heartbeating(Protocol):
    def heartbeat(self, submission_id: int, attempt: int) -> None: ...


def heartbeat_each(client: Heartbeating, jobs: list[tuple[int, int]]) -> list[str]:
    """Each job's lease renewed by a request of its own: "extended", or "ended" for one the server refuses.

    The per-job fallback of :meth:`WorkerClient.heartbeat_several` (a server older than the batched route),
    and of the worker loop for a client with no ``heartbeat_several`` (test doubles). Other errors (the
    token refused, the server away) propagate: the caller decides.
    """
    states = []
    for sid, attempt in jobs:
        try:
            client.heartbeat(sid, attempt)
            states.append("extended")
        except LeaseLostError:
            states.append("ended")
    return states


def _several_answer(answer: dict[str, Any]) -> dict[str, Any] | Exception:
    """One answer of ``POST /worker/complete``: the one-job route's answer, or the error it would raise."""
    if answer.get("accepted"):
        return {"status": answer.get("status"), "failure_reason": answer.get("failure_reason") or ""}
    message = (answer.get("error") or {}).get("message") or "refused"
    status = answer.get("http_status")
    if status == 409:
        return LeaseLostError(message)
    return ProtocolError(f"/complete: {status} {message}", status)


def _transient(response: httpx.Response) -> httpx.Response:
    """Raise :class:`_Transient` for answers worth retrying: 5xx and 429 (with the server's Retry-After)."""
    code = response.status_code
    if code >= 500 or code == 429:
        if not response.is_closed:
            response.read()
        raise _Transient(f"server error {code}" if code >= 500 else "too many requests", _retry_after(response))
    return response


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), honoured on 429 and 503 only."""
    value = response.headers.get("retry-after")
    if value is None or response.status_code not in (429, 503):
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return body.get("error", {}).get("message") or str(body)
    except ValueError:
        return response.text[:200]
