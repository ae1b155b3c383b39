"""The worker loop: claim → fetch files → evaluate in a sandbox (heartbeating) → complete.

One program for the platform's pool, the in-process demo worker and a host's remote cluster.
Stopping (SIGTERM/SIGINT or :meth:`Worker.stop`) hands a running job back to the queue at once
instead of letting its lease run out.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import platform
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.evaluation import ChunkingSpec, EvaluationJob, EvaluationLimits, EvaluatorPool

from .cache import FileCache
from .client import LeaseLostError, WorkerClient

log = logging.getLogger("assay.worker")


@dataclass
class LocalFiles:
    """What a remote worker supplies itself, so test labels never reach the platform."""

    annotations: dict[str, Path] = field(default_factory=dict)  # phase codename → annotation file
    evaluation_script: Path | None = None  # a zip, or a folder zipped once at start

    def script_zip(self, cache_root: Path) -> Path | None:
        src = self.evaluation_script
        if src is None or src.is_file():
            return src
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(src.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(src).as_posix())
        data = buf.getvalue()
        target = cache_root / "local" / f"{hashlib.sha256(data).hexdigest()}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target


class Worker:
    def __init__(
        self,
        client: WorkerClient,
        workdir: Path,
        *,
        pool: EvaluatorPool | None = None,
        local: LocalFiles | None = None,
        worker_id: str | None = None,
        poll_wait: float = 20.0,
        sandbox: str = "auto",
    ) -> None:
        self.client = client
        self.workdir = workdir
        self.cache = FileCache(workdir / "cache")
        self.pool = pool or EvaluatorPool(workdir=workdir / "evaluators", sandbox=sandbox)
        self.local = local or LocalFiles()
        self.local_script = self.local.script_zip(workdir / "cache")
        self.worker_id = worker_id or f"{platform.node()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.poll_wait = poll_wait
        self._stop = threading.Event()
        self.processed = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, max_jobs: int | None = None) -> None:
        """Serve jobs until stopped (or ``max_jobs`` are done)."""
        log.info("worker %s polling %s", self.worker_id, self.client.base)
        try:
            while not self._stop.is_set() and (max_jobs is None or self.processed < max_jobs):
                try:
                    job = self.client.claim(self.worker_id, wait=self.poll_wait)
                except ConnectionError as exc:
                    log.error("cannot reach the server: %s", exc)
                    self._stop.wait(5)
                    continue
                if job is None:
                    continue
                if self._stop.is_set():
                    self._release(job)
                    break
                self.run_job(job)
                self.processed += 1
        finally:
            self.pool.close()

    def _release(self, job: dict) -> None:
        try:
            self.client.release(job["submission_id"], job["attempt"])
            log.info("returned submission %s to the queue", job["submission_id"])
        except (LeaseLostError, ConnectionError) as exc:
            log.warning("could not return submission %s: %s", job["submission_id"], exc)

    def run_job(self, job: dict[str, Any]) -> None:
        sid, attempt = job["submission_id"], job["attempt"]
        log.info("evaluating submission %s (attempt %s, phase %s)", sid, attempt, job["phase"]["codename"])
        try:
            evaluation = self._evaluation_job(job)
        except Exception as exc:  # noqa: BLE001 - any fetch problem fails this job, not the worker
            log.exception("could not prepare submission %s", sid)
            self._complete(sid, attempt, {"error": f"the worker could not prepare the evaluation: {exc}"})
            return
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def evaluate() -> None:
            try:
                outcome["value"] = self.pool.evaluate(evaluation)
            except Exception as exc:  # noqa: BLE001
                log.exception("evaluator failure on submission %s", sid)
                outcome["error"] = f"the evaluator failed: {exc}"
            finally:
                done.set()

        thread = threading.Thread(target=evaluate, name=f"evaluate-{sid}", daemon=True)
        thread.start()
        interval = max(float(job.get("lease_seconds", 60)) / 3, 1.0)
        lost = False
        while not done.wait(interval if not self._stop.is_set() else 0.1):
            if self._stop.is_set():
                self._release(job)
                self.pool.close()  # kills the evaluation; its outcome is discarded
                done.wait(30)
                return
            try:
                self.client.heartbeat(sid, attempt)
            except LeaseLostError:
                log.warning("submission %s was taken back (cancelled or re-queued); dropping it", sid)
                lost = True
                break
            except ConnectionError as exc:
                log.warning("heartbeat for %s failed: %s", sid, exc)
        if lost:
            done.wait()
            return
        if "error" in outcome:
            self._complete(sid, attempt, {"error": outcome["error"]})
            return
        result = outcome["value"]
        self._complete(
            sid,
            attempt,
            {
                "output": result.output if result.ok else None,
                "error": None if result.ok else (result.error or "evaluation failed"),
                "stdout": result.stdout,
                "stderr": result.stderr,
                "sandbox": result.sandbox,
            },
        )

    def _complete(self, sid: int, attempt: int, report: dict[str, Any]) -> None:
        try:
            answer = self.client.complete(sid, attempt, report)
            log.info("submission %s: %s %s", sid, answer.get("status"), answer.get("failure_reason") or "")
        except LeaseLostError as exc:
            log.warning("result for submission %s not accepted: %s", sid, exc)

    def _evaluation_job(self, job: dict[str, Any]) -> EvaluationJob:
        codename = job["phase"]["codename"]
        submission = self.cache.fetch(self.client, job["submission_file"])
        if self.local_script is not None:
            script = self.local_script
        elif job.get("evaluation_script"):
            script = self.cache.fetch(self.client, job["evaluation_script"])
        else:
            raise RuntimeError("the challenge has no evaluation script on the server; start the worker with one")
        annotation: Path | None
        if codename in self.local.annotations:
            annotation = self.local.annotations[codename]
        elif job.get("annotation"):
            annotation = self.cache.fetch(self.client, job["annotation"])
        else:
            annotation = None
        limits = job.get("limits") or {}
        chunking = job.get("chunking")
        key_parts = [_file_key(script), _file_key(annotation) if annotation else "-"]
        return EvaluationJob(
            key=":".join(key_parts),
            script_zip=script,
            annotation_file=annotation,
            submission_file=submission,
            phase_codename=codename,
            submission_metadata=job.get("submission_metadata") or {},
            limits=EvaluationLimits(**{k: v for k, v in limits.items() if k in EvaluationLimits.__dataclass_fields__}),
            chunking=_chunking(chunking),
        )


def _chunking(spec: dict | None) -> ChunkingSpec | None:
    """The phase's ``chunked_evaluation`` as the pool takes it (unknown keys from newer servers ignored)."""
    if not spec:
        return None
    return ChunkingSpec(**{k: v for k, v in spec.items() if k in ChunkingSpec.__dataclass_fields__})


def _file_key(path: Path) -> str:
    """Cached files sit in a folder named by their hash; local files are keyed by path and mtime."""
    parent = path.parent.name
    if len(parent) == 64:
        return parent
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()
