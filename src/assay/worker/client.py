"""HTTP client of the worker protocol (``/api/v1/worker/…``), with retries that lose nothing."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("assay.worker")


class LeaseLostError(Exception):
    """The server no longer lets this worker hold the job (cancelled, re-claimed or finished)."""


class ProtocolError(Exception):
    """The server refused a request in a way retrying cannot fix (bad token, bad request)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WorkerClient:
    """Talks to one Assay server with one worker token."""

    def __init__(self, server: str, token: str, *, timeout: float = 60.0, retry_for: float = 300.0) -> None:
        self.base = server.rstrip("/") + "/api/v1/worker"
        self.retry_for = retry_for
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "User-Agent": "assay-worker"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, payload: dict, *, timeout: float | None = None, retry: bool = True) -> httpx.Response:
        """POST with retries on connection errors and 5xx for up to ``retry_for`` seconds."""
        deadline = time.monotonic() + (self.retry_for if retry else 0)
        delay = 0.5
        while True:
            try:
                response = self.http.post(self.base + path, json=payload, timeout=timeout or httpx.USE_CLIENT_DEFAULT)
                if response.status_code < 500:
                    return self._check(response)
                problem = f"server error {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ConnectionError(f"{path}: {problem}")
            log.warning("%s failed (%s); retrying in %.1f s", path, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code == 409:
            raise LeaseLostError(_message(response))
        if response.status_code in (401, 403):
            raise ProtocolError(f"the server refused the worker token: {_message(response)}", response.status_code)
        if response.status_code >= 400:
            raise ProtocolError(
                f"{response.request.url.path}: {response.status_code} {_message(response)}", response.status_code
            )
        return response

    def claim(
        self, worker_id: str, wait: float = 20.0, containers: bool = False, code_bundles: bool = False
    ) -> dict[str, Any] | None:
        """The next job, or None after ``wait`` seconds; ``containers`` asks for image jobs too,
        ``code_bundles`` for code bundles (run in this worker's bubblewrap sandbox)."""
        payload = {"worker_id": worker_id, "wait": wait, "containers": containers, "code_bundles": code_bundles}
        response = self._post("/claim", payload, timeout=wait + 30)
        return None if response.status_code == 204 else response.json()["job"]

    def heartbeat(self, submission_id: int, attempt: int) -> None:
        self._post(f"/jobs/{submission_id}/heartbeat", {"attempt": attempt}, retry=False)

    def release(self, submission_id: int, attempt: int) -> None:
        self._post(f"/jobs/{submission_id}/release", {"attempt": attempt}, retry=False)

    def complete(self, submission_id: int, attempt: int, report: dict[str, Any]) -> dict[str, Any]:
        return self._post(f"/jobs/{submission_id}/complete", {"attempt": attempt, **report}).json()

    def download(self, sha256: str, target: Path) -> Path:
        """Stream the file with this hash to ``target``, checking the hash before it appears there."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, self.http.stream("GET", f"{self.base}/files/{sha256}") as response:
                if response.status_code != 200:
                    response.read()
                    self._check(response)
                    raise ProtocolError(f"download {sha256}: HTTP {response.status_code}")
                for chunk in response.iter_bytes(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise ProtocolError(f"download {sha256}: the bytes received hash to {digest.hexdigest()}")
            os.replace(tmp, target)
            return target
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return body.get("error", {}).get("message") or str(body)
    except ValueError:
        return response.text[:200]
