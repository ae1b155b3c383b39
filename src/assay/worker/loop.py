"""The worker loop: claim → fetch files → evaluate in a sandbox (heartbeating) → complete.

One program for the platform's pool, the in-process demo worker and a host's remote cluster. With
``slots`` > 1 a worker runs that many jobs at once and speaks the batched protocol: one claim asks for
as many jobs as it has free slots, and results that finish together are reported in one call.
Stopping (SIGTERM/SIGINT or :meth:`Worker.stop`) takes seconds in every state (waiting in a claim,
retrying an unreachable server, downloading, evaluating) and hands a job in hand back to the queue
at once instead of letting its lease run out. Jobs with a ``container`` block (docker-based challenges) run
through :mod:`assay.worker.containers`: images only reach workers that said they can run them; code
bundles (zips) need no Docker and run in the bubblewrap sandbox on any worker.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.bundle.environments import DEFAULT_ENVIRONMENT
from assay.evaluation import (
    ChunkingSpec,
    EvaluationJob,
    EvaluationLimits,
    EvaluationOutcome,
    EvaluatorPool,
    RunHandle,
)
from assay.evaluation.contract import MAX_CASES_GZIP_BYTES, ResultError, checked_result, encode_cases
from assay.evaluation.scripts import zip_folder

from .cache import FileCache, Hold
from .client import LeaseLostError, ProtocolError, TokenRefused, WorkerClient, WorkerStopped, heartbeat_each
from .containers import CodeBundleRunner, ContainerFiles, ContainerRunner, failed, is_code_bundle, open_runner

log = logging.getLogger("assay.worker")
MAX_SLOTS = 16  # the server's bound on one claim (queue.MAX_JOBS_PER_CLAIM)
BUSY_LOOK_SECONDS = 1.0  # with jobs running and a slot free, how often the queue is looked at (never waited on)


@dataclass
class LocalFiles:
    """What a remote worker supplies itself, so test labels never reach the platform."""

    annotations: dict[str, Path] = field(default_factory=dict)  # phase codename → annotation file
    evaluation_script: Path | None = None  # a zip, or a folder zipped once at start

    def script_zip(self, cache_root: Path) -> Path | None:
        """The script as a zip: a zip file as is, a folder zipped by :func:`zip_folder` (symlinks not followed)."""
        src = self.evaluation_script
        if src is None or src.is_file():
            return src
        return zip_folder(src, cache_root / "local")


class Worker:
    """Claims and evaluates one job at a time.

    ``containers``: "auto" runs container jobs when a Docker engine answers at start, "docker" requires
    one (:class:`~assay.evaluation.containers.ContainerUnavailable` otherwise), "kubernetes" runs them
    as Kubernetes Jobs (see :func:`assay.worker.containers.open_runner`), "off" never claims them; a
    :class:`ContainerRunner` may be passed directly. Code bundles run whatever ``containers`` says
    (:class:`~assay.worker.containers.CodeBundleRunner`, in ``workdir/containers``).
    """

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
        containers: str | ContainerRunner = "auto",
        slots: int = 1,
    ) -> None:
        self.client = client
        self.workdir = workdir
        self.cache = FileCache(workdir / "cache")
        self.pool = pool or EvaluatorPool(workdir=workdir / "evaluators", sandbox=sandbox)
        self.local = local or LocalFiles()
        self.local_script = self.local.script_zip(workdir / "cache")
        self.worker_id = worker_id or f"{platform.node()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.poll_wait = poll_wait
        self.slots = max(1, min(int(slots), MAX_SLOTS))
        self._stop = threading.Event()
        self.processed = 0
        self.containers = containers if isinstance(containers, ContainerRunner) else open_runner(containers, workdir)
        self.code_bundles = CodeBundleRunner(workdir / "containers")

    def stop(self) -> None:
        self._stop.set()
        stopping = getattr(self.client, "stopping", None)  # ends the client's waits (test doubles have none)
        if stopping is not None:
            stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, max_jobs: int | None = None) -> None:
        """Serve jobs until stopped (or ``max_jobs`` are done)."""
        mode = "with container jobs" if self.containers is not None else "without container jobs"
        code = self.code_bundles.available()
        mode += ", with code bundles" if code else ", without code bundles (no bubblewrap sandbox)"
        log.info("worker %s polling %s (%s)", self.worker_id, self.client.base, mode)
        if getattr(self.client, "outbox", False) is None:  # results not reported wait here (test doubles: none)
            self.client.outbox = self.workdir / "outbox"
        send_kept = getattr(self.client, "send_kept", lambda: 0)
        try:
            if self.slots > 1 and hasattr(self.client, "claim_several"):
                self._run_several(max_jobs, code, send_kept)
                return
            while not self._stop.is_set() and (max_jobs is None or self.processed < max_jobs):
                try:
                    send_kept()  # results kept while the server was away (or from before a restart)
                    job = self.client.claim(
                        self.worker_id, wait=self.poll_wait, containers=self.containers is not None, code_bundles=code
                    )
                except ConnectionError as exc:
                    log.error("cannot reach the server: %s", exc)
                    self._stop.wait(5)
                    continue
                except WorkerStopped:
                    break
                if job is None:
                    continue
                if self._stop.is_set():
                    self._release(job)
                    break
                try:
                    self.run_job(job)
                except WorkerStopped:  # stopped while fetching files (the job goes back) or reporting (kept)
                    if not self.client.kept(job["submission_id"], job["attempt"]):
                        self._release(job)
                    break
                self.processed += 1
        finally:
            self.pool.close()
            self._stop_runs()

    def _run_several(self, max_jobs: int | None, code: bool, send_kept: Callable[[], int]) -> None:
        """The batched loop: this thread claims and reports; each job is fetched and evaluated on its own
        thread, and :class:`_Heartbeats` keeps every lease on another, in one request per interval. A
        claim asks for the free slots' worth of jobs; it long-polls only when nothing runs, and otherwise
        looks (without waiting) when a job ended or every :data:`BUSY_LOOK_SECONDS`."""
        running: dict[tuple[int, int], _Running] = {}  # by (submission, attempt): a job offered again may come back
        ended = threading.Event()
        looked_at, just_ended = 0.0, False
        heartbeats = _Heartbeats(self.client)
        heartbeats.start()
        try:
            while True:
                if self._stop.is_set():
                    break
                if heartbeats.refused is not None:
                    raise heartbeats.refused  # the token was revoked: this worker must stop
                ended.clear()  # before the scan: a job ending after it wakes the wait below
                done = [r for r in running.values() if r.done.is_set()]
                if done:
                    for r in done:
                        del running[r.key]
                        heartbeats.forget(r)
                    in_use = {_sha(r.job) for r in running.values()}  # the same file in two jobs: kept for both
                    for r in done:
                        if not _shared(r.job) and _sha(r.job) not in in_use:
                            self.cache.discard(r.job.get("submission_file"))
                    self._report_several([r for r in done if _reportable(r)])
                    self.processed += len(done)
                    just_ended = True
                budget = self.slots - len(running)
                if max_jobs is not None:
                    budget = min(budget, max_jobs - self.processed - len(running))
                if budget <= 0 and not running:
                    return  # max_jobs done
                now = time.monotonic()
                if budget > 0 and (not running or just_ended or now - looked_at >= BUSY_LOOK_SECONDS):
                    just_ended, looked_at = False, now
                    try:
                        send_kept()
                        claimed = self.client.claim_several(
                            self.worker_id,
                            budget,
                            wait=0.0 if running else self.poll_wait,
                            containers=self.containers is not None,
                            code_bundles=code,
                        )
                    except ConnectionError as exc:
                        log.error("cannot reach the server: %s", exc)
                        self._stop.wait(1 if running else 5)
                        claimed = []
                    for job in claimed:
                        if self._stop.is_set():
                            self._release(job)
                            continue
                        run = _Running(job, beat_at=time.monotonic() + _beat_interval(job), handle=_handle(job))
                        running[run.key] = run
                        heartbeats.hold(run)  # before its files are fetched: a slow download keeps its lease
                        self._start(run, ended)
                    if claimed or not running:
                        continue
                ended.wait(0.1)
        except WorkerStopped:
            pass
        finally:
            heartbeats.close()
            self._stop_several(running)

    def _start(self, run: _Running, ended: threading.Event) -> None:
        """Fetch a job's files and evaluate it, on a thread of its own (nothing here waits on the network)."""
        job, sid = run.job, run.sid
        _job_log(sid, job["attempt"]).info("evaluating (phase %s)", job["phase"]["codename"])
        work: Callable[[], EvaluationOutcome] | None = None
        if job.get("container") and is_code_bundle(job):
            work = functools.partial(self._run_container_job, self.code_bundles, job, run.handle)
        elif job.get("container"):
            if self.containers is None:
                run.outcome["error"] = "this worker does not run container images; contact the host"
            else:
                work = functools.partial(self._run_container_job, self.containers, job, run.handle)
        else:
            work = functools.partial(self._fetch_and_evaluate, job, run.handle)
        if work is None:
            run.done.set()
            ended.set()
            return

        def evaluate() -> None:
            try:
                run.outcome["value"] = work()
            except WorkerStopped:
                pass
            except _NotPrepared as exc:
                run.outcome["error"] = f"the worker could not prepare the evaluation: {exc.__cause__}"
            except Exception as exc:  # noqa: BLE001
                _job_log(sid, job["attempt"]).exception("evaluator failure")
                run.outcome["error"] = f"the evaluator failed: {exc}"
            finally:
                run.done.set()
                ended.set()

        run.thread = threading.Thread(target=evaluate, name=f"evaluate-{sid}", daemon=True)
        run.thread.start()

    def _fetch_and_evaluate(self, job: dict[str, Any], handle: RunHandle | None = None) -> EvaluationOutcome:
        """A file job on its evaluation thread: its files (any fetch problem fails this job, not the worker);
        ``handle.stop()`` kills its evaluator alone. Its files are held in the cache until the evaluation ends
        (another slot making room must not delete them under it)."""
        with self.cache.hold() as held:
            try:
                evaluation = self._evaluation_job(job, held)
            except WorkerStopped:
                raise
            except Exception as exc:
                _job_log(job["submission_id"], job["attempt"]).exception("could not prepare the evaluation")
                raise _NotPrepared() from exc
            return self.pool.evaluate(evaluation, handle)

    def _report_several(self, ended: list[_Running]) -> None:
        """Report the jobs that ended, in one call; what a batch cannot carry is reported one by one, with
        :meth:`_complete`'s fallbacks (a refused report becomes a plain failure)."""
        reports: list[tuple[int, int, dict[str, Any]]] = []
        for r in ended:
            if "error" in r.outcome:
                reports.append((r.sid, r.job["attempt"], {"error": r.outcome["error"]}))
            elif "value" in r.outcome:
                reports.append((r.sid, r.job["attempt"], _report(r.outcome["value"])))
        if not reports:
            return
        try:
            answers = self.client.complete_several(reports)
        except (TokenRefused, WorkerStopped):
            raise
        except ConnectionError as exc:  # kept in the outbox (HTTP); otherwise the leases run out
            log.error("could not report submissions %s: %s", [sid for sid, _, _ in reports], exc)
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a value the JSON encoder refuses: one by one instead
            log.warning("could not report %d results together (%s); reporting each alone", len(reports), exc)
            for sid, attempt, report in reports:
                self._complete(sid, attempt, report)
            return
        lost = {r.key for r in ended if r.lost}
        for (sid, attempt, report), answer in zip(reports, answers, strict=True):
            if isinstance(answer, TokenRefused):
                raise answer
            about = _job_log(sid, attempt)
            if isinstance(answer, LeaseLostError) and (sid, attempt) in lost:
                about.warning(
                    "result not accepted: its lease had run out and the job was offered again, and another "
                    "attempt completed first or it was cancelled (%s)",
                    answer,
                )
            elif isinstance(answer, LeaseLostError):
                about.warning("result not accepted: %s", answer)
            elif isinstance(answer, dict) and (sid, attempt) in lost:
                about.info("the late result was taken: %s", answer.get("status"))
            elif isinstance(answer, ProtocolError):
                about.error("the server refused the report: %s", answer)
                if set(report) != {"error"}:
                    self._complete(
                        sid, attempt, {"error": f"the worker's report was refused by the server: {answer}"[:2000]}
                    )
            elif isinstance(answer, dict):
                about.info("%s %s", answer.get("status"), answer.get("failure_reason") or "")

    def _stop_several(self, running: dict[int, _Running]) -> None:
        """Stopping: jobs still evaluating go back to the queue at once and their evaluations are killed;
        results already in hand are reported (kept in the outbox if that cannot be done now)."""
        if not running:
            return
        evaluating = [r for r in running.values() if not r.done.is_set()]
        for r in evaluating:
            r.dropped = True
            self._release(r.job)
        self.pool.close()
        self._stop_runs()
        for r in evaluating:
            if r.thread is not None:
                r.thread.join(30)
        finished = [r for r in running.values() if not r.dropped and r.done.is_set()]
        try:
            self._report_several(finished)
        except WorkerStopped:
            pass

    def _release(self, job: dict) -> None:
        about = _job_log(job["submission_id"], job["attempt"])
        try:
            self.client.release(job["submission_id"], job["attempt"])
            about.info("returned to the queue")
        except (LeaseLostError, ConnectionError) as exc:
            about.warning("could not return it to the queue: %s", exc)

    def run_job(self, job: dict[str, Any]) -> None:
        """Evaluate one job and report it. Whatever goes wrong becomes that submission's reported
        failure; only a refused token (the worker must stop) propagates."""
        try:
            self._run_job(job)
        except TokenRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - a job, not the worker, fails
            self._job_failed(job, exc)

    def _job_failed(self, job: dict[str, Any], exc: Exception) -> None:
        sid, attempt = job.get("submission_id"), job.get("attempt")
        _job_log(sid, attempt).exception("the worker failed on this submission")
        if isinstance(sid, int) and isinstance(attempt, int):
            reason = f"the worker failed on this submission: {type(exc).__name__}: {exc}"
            self._complete(sid, attempt, {"error": _text(reason[:2000])})

    def _run_job(self, job: dict[str, Any]) -> None:
        sid, attempt = job["submission_id"], job["attempt"]
        about = _job_log(sid, attempt)
        about.info("evaluating (phase %s)", job["phase"]["codename"])
        handle = _handle(job)
        work: Callable[[], EvaluationOutcome]
        if job.get("container") and is_code_bundle(job):
            work = functools.partial(self._run_container_job, self.code_bundles, job, handle)  # no Docker needed
        elif job.get("container"):
            runner = self.containers
            if runner is None:  # a server that ignores the claim's "containers": false
                self._complete(sid, attempt, {"error": "this worker does not run container images; contact the host"})
                return
            work = functools.partial(self._run_container_job, runner, job, handle)  # fetches under heartbeats too
        else:
            work = functools.partial(self._fetch_and_evaluate, job, handle)  # a large file downloads under heartbeats
        outcome = self._with_heartbeats(job, work, handle)
        if outcome is None:
            return
        if outcome.get("lost") and "error" in outcome:
            about.warning(_NOT_OURS, outcome["error"])
            return
        if not _shared(job):
            self.cache.discard(job.get("submission_file"))
        if "error" in outcome:
            self._complete(sid, attempt, {"error": outcome["error"]})
            return
        self._complete(sid, attempt, _report(outcome["value"]))

    def _with_heartbeats(
        self, job: dict[str, Any], work: Callable[[], EvaluationOutcome], handle: RunHandle
    ) -> dict[str, Any] | None:
        """Run ``work`` on a thread while keeping the lease alive; None when the job was handed back or lost.

        Stopping hands the job back at once and kills what runs it (evaluators, containers); a job the
        server says ended is ended through ``handle`` (what ``work`` runs is attached to it).
        """
        sid, attempt = job["submission_id"], job["attempt"]
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def evaluate() -> None:
            try:
                outcome["value"] = work()
            except WorkerStopped:
                pass  # a download, given up because the worker is stopping
            except _NotPrepared as exc:
                outcome["error"] = f"the worker could not prepare the evaluation: {exc.__cause__}"
            except Exception as exc:  # noqa: BLE001
                _job_log(sid, attempt).exception("evaluator failure")
                outcome["error"] = f"the evaluator failed: {exc}"
            finally:
                done.set()

        thread = threading.Thread(target=evaluate, name=f"evaluate-{sid}", daemon=True)
        thread.start()
        interval = max(float(job.get("lease_seconds", 60)) / 3, 1.0)
        beat_at = time.monotonic() + interval
        while not done.wait(0.1):  # a stop is seen within 0.1 s, not at the next heartbeat
            if self._stop.is_set():
                self._release(job)
                self.pool.close()  # kills the evaluation; its outcome is discarded
                self._stop_runs()
                done.wait(30)
                return None
            if outcome.get("lost") or time.monotonic() < beat_at:
                continue
            beat_at = time.monotonic() + interval
            try:
                (state,) = _lease_states(self.client, [(sid, attempt)])
            except WorkerStopped:
                continue  # the next turn hands the job back
            except (ConnectionError, ProtocolError) as exc:
                if isinstance(exc, TokenRefused):
                    raise
                _job_log(sid, attempt).warning("heartbeat failed: %s", exc)
                continue
            if state == "lost":  # offered again: finished and reported all the same (taken if it comes first)
                _job_log(sid, attempt).warning(_LOST)
                outcome["lost"] = True
            elif state != "extended":
                _job_log(sid, attempt).warning("cancelled or completed elsewhere; dropping it")
                handle.stop()  # a participant's run may last hours: end it now
                done.wait()
                return None
        if "value" not in outcome and "error" not in outcome:  # a download given up: the worker is stopping
            self._release(job)
            return None
        return outcome

    def _stop_runs(self) -> None:
        """End every container and code bundle in progress (the worker is stopping)."""
        if self.containers is not None:
            self.containers.stop_all()
        self.code_bundles.stop_all()

    def _run_container_job(
        self, runner: ContainerRunner | CodeBundleRunner, job: dict[str, Any], handle: RunHandle | None = None
    ) -> EvaluationOutcome:
        with self.cache.hold() as held:  # its files stay in the cache while its container runs
            try:
                files = self._container_files(job, held)
            except Exception as exc:  # noqa: BLE001 - as for any job: a fetch problem fails this job only
                _job_log(job["submission_id"], job["attempt"]).exception("could not prepare the evaluation")
                return failed(f"the worker could not prepare the evaluation: {exc}")
            return runner.evaluate(job, files, self.pool, handle)

    def _container_files(self, job: dict[str, Any], held: Hold) -> ContainerFiles:
        """Fetch a container job's files (the participant's tarball or code zip is its ``submission_file``)."""
        spec = job["container"]
        fetch = functools.partial(held.fetch, self.client)
        source = spec.get("image") or {}
        image = fetch(source["file"]) if source.get("file") else None
        code = fetch(source["code"]) if source.get("code") else None
        files = ContainerFiles(limits=_limits(job), image=image, code=code)
        if spec.get("kind") == "static_dataset":
            files.evaluation = self._evaluation_job(job, held, files.limits)
            files.test_inputs = fetch(spec["test_inputs"]) if spec.get("test_inputs") else None
        else:
            files.annotation = self._annotation(job, held)
            environment = (spec.get("environment") or {}).get("file")
            files.environment = fetch(environment) if environment else None
        return files

    def _complete(self, sid: int, attempt: int, report: dict[str, Any]) -> None:
        """Report a result; a report that cannot be built, sent or accepted becomes a plain failure, so
        the job never hangs and the worker never stops (except for a refused token)."""
        about = _job_log(sid, attempt)
        try:
            answer = self.client.complete(sid, attempt, report)
            about.info("%s %s", answer.get("status"), answer.get("failure_reason") or "")
        except LeaseLostError as exc:
            about.warning("result not accepted: %s", exc)
        except ConnectionError as exc:  # the lease runs out and the job is evaluated again
            about.error("could not report the result: %s", exc)
        except TokenRefused:
            raise  # the token was revoked: this worker must stop
        except ProtocolError as exc:
            about.error("the server refused the report: %s", exc)
            if set(report) != {"error"}:  # the plainest report left; refused too, the lease runs out
                self._complete(sid, attempt, {"error": f"the worker's report was refused by the server: {exc}"[:2000]})
        except Exception as exc:  # noqa: BLE001 - e.g. a value the JSON encoder refuses
            about.exception("could not send the report")
            if set(report) != {"error"}:
                reason = f"the worker could not send the result: {type(exc).__name__}: {exc}"
                self._complete(sid, attempt, {"error": _text(reason[:2000])})

    def _evaluation_job(self, job: dict[str, Any], held: Hold, limits: EvaluationLimits | None = None) -> EvaluationJob:
        """The job as the pool scores it; its cached files are fetched through ``held`` (the job's hold)."""
        codename = job["phase"]["codename"]
        submission = held.fetch(self.client, job["submission_file"])
        if self.local_script is not None:
            script = self.local_script
        elif job.get("evaluation_script"):
            script = held.fetch(self.client, job["evaluation_script"])
        else:
            raise RuntimeError("the challenge has no evaluation script on the server; start the worker with one")
        annotation = self._annotation(job, held)
        chunking = job.get("chunking")
        key_parts = [_file_key(script), _file_key(annotation) if annotation else "-"]
        return EvaluationJob(
            key=":".join(key_parts),
            script_zip=script,
            annotation_file=annotation,
            submission_file=submission,
            phase_codename=codename,
            submission_metadata=job.get("submission_metadata") or {},
            limits=limits if limits is not None else _limits(job),
            chunking=_chunking(chunking),
            environment=job.get("environment") or DEFAULT_ENVIRONMENT,  # absent from older servers' jobs
        )

    def _annotation(self, job: dict[str, Any], held: Hold) -> Path | None:
        codename = job["phase"]["codename"]
        if codename in self.local.annotations:
            return self.local.annotations[codename]
        if job.get("annotation"):
            return held.fetch(self.client, job["annotation"])
        return None


@dataclass
class _Running:
    """A job of the batched loop: evaluated on ``thread``; ``outcome`` holds its value or error once ``done``."""

    job: dict[str, Any]
    beat_at: float
    handle: RunHandle = field(default_factory=RunHandle)  # what runs it, stopped alone when the job ends
    done: threading.Event = field(default_factory=threading.Event)
    outcome: dict[str, Any] = field(default_factory=dict)
    thread: threading.Thread | None = None
    dropped: bool = False  # cancelled, completed elsewhere or handed back: its outcome is not reported
    lost: bool = False  # its lease ran out and the job was offered again: reported anyway (taken if first)

    @property
    def sid(self) -> int:
        return self.job["submission_id"]

    @property
    def key(self) -> tuple[int, int]:
        return self.job["submission_id"], self.job["attempt"]


def _reportable(run: _Running) -> bool:
    """Whether an ended job's outcome goes to the server: not when it was dropped; for a job offered again
    (``lost``), only an evaluation's outcome: the worker's own failure (files no longer served to it, an
    evaluator that crashed) is not the submission's, and the attempt running elsewhere will answer."""
    if run.dropped:
        return False
    if run.lost and "value" not in run.outcome:
        _job_log(*run.key).warning(_NOT_OURS, run.outcome.get("error"))
        return False
    return True


class _NotPrepared(Exception):
    """A job's files could not be fetched or read (its cause says why): the job fails, not the worker."""


def _handle(job: dict[str, Any]) -> RunHandle:
    return RunHandle(_job_label(job["submission_id"], job["attempt"]))


def _beat_interval(job: dict[str, Any]) -> float:
    """A third of the job's lease: two heartbeats may fail before it runs out."""
    return max(float(job.get("lease_seconds", 60)) / 3, 1.0)


class _Heartbeats:
    """The leases of the jobs a batched worker holds, kept on a thread of their own, so nothing the loop
    does (a large download, a report retried through an outage, a slow claim) delays them: issue 13's
    container job lost its lease while the loop fetched other jobs' files. When one job is due, every
    job held is renewed in one request (``heartbeat_several``; one request per job with a client or
    server that has no batched route). ``lost``: the job was offered again, but its result is still taken
    if it comes first, so it runs on and is reported; ``ended``: cancelled or completed, it is dropped and
    what runs it is stopped through its :class:`RunHandle` (that job's alone: the other slots run on)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refused: TokenRefused | None = None  # the server refused the token: the loop stops
        self._held: dict[tuple[int, int], _Running] = {}
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="assay-worker-heartbeats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._quit.set()
        self._thread.join(15)

    def hold(self, run: _Running) -> None:
        with self._lock:
            self._held[run.key] = run

    def forget(self, run: _Running) -> None:
        with self._lock:
            self._held.pop(run.key, None)

    def _serve(self) -> None:
        try:
            while not self._quit.is_set():
                with self._lock:
                    beating = [r for r in self._held.values() if not (r.done.is_set() or r.dropped or r.lost)]
                now = time.monotonic()
                if not beating or min(r.beat_at for r in beating) > now:
                    soonest = min((r.beat_at for r in beating), default=now + 1.0)
                    self._quit.wait(min(max(soonest - now, 0.05), 1.0))  # a job held meanwhile is seen within 1 s
                    continue
                self._beat(beating)
        except WorkerStopped:
            pass
        finally:
            finished = getattr(self.client, "thread_finished", None)  # the in-process client's connection
            if finished is not None:
                finished()

    def _beat(self, beating: list[_Running]) -> None:
        now = time.monotonic()
        try:
            states = self._states([r.key for r in beating])
        except TokenRefused as exc:
            log.error("heartbeat refused: %s", exc)
            self.refused = exc
            self._quit.set()
            return
        except (ConnectionError, ProtocolError) as exc:
            log.warning("heartbeat for submissions %s failed: %s", [r.sid for r in beating], exc)
            for r in beating:  # tried again soon, well before the lease runs out
                r.beat_at = now + min(_beat_interval(r.job) / 2, 5.0)
            return
        for r, state in zip(beating, states, strict=True):
            r.beat_at = now + _beat_interval(r.job)
            if state == "lost":
                _job_log(*r.key).warning(_LOST)
                r.lost = True
            elif state != "extended":
                _job_log(*r.key).warning("cancelled or completed elsewhere; stopping and dropping it")
                r.dropped = True
                r.handle.stop()  # its container, code bundle or evaluator alone: the other slots' jobs run on

    def _states(self, keys: list[tuple[int, int]]) -> list[str]:
        return _lease_states(self.client, keys)


_LOST = (
    "its lease ran out and the job was offered again; finishing it anyway "
    "(the server takes this result if no other attempt completes first)"
)
_NOT_OURS = "not reporting the worker's own failure (%s); the job runs elsewhere"


class _JobLog(logging.LoggerAdapter):
    """The worker's lines about one job: each begins ``submission <id> attempt <n>:`` and carries
    ``submission_id`` and ``attempt`` as record fields (the server's JSON lines show ``submission_id``),
    so one search finds a job's lines whichever thread wrote them: the loop, its evaluation, its heartbeats."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        return f"{_job_label(extra['submission_id'], extra['attempt'])}: {msg}", kwargs


def _job_label(sid: Any, attempt: Any) -> str:
    return f"submission {sid} attempt {attempt}"


def _job_log(sid: Any, attempt: Any) -> _JobLog:
    return _JobLog(log, {"submission_id": sid, "attempt": attempt})


def _lease_states(client: Any, keys: list[tuple[int, int]]) -> list[str]:
    """Renew these leases: the server's word for each ("extended", "lost", "ended"), in one request
    (``heartbeat_several``); a client without it (test doubles) job by job (:func:`heartbeat_each`)."""
    several = getattr(client, "heartbeat_several", None)
    return list(several(keys)) if several is not None else heartbeat_each(client, keys)


def _report(result: EvaluationOutcome) -> dict[str, Any]:
    """What the server is told, in strict JSON: the output as the result contract stores it (NaN as
    null), or why there is none. The server applies the same contract, so it cannot refuse this."""
    report: dict[str, Any] = {
        "output": None,
        "error": None,
        "stdout": _text(result.stdout),
        "stderr": _text(result.stderr),
        "sandbox": _text(result.sandbox),
    }
    if not result.ok:
        report["error"] = _text(result.error or "evaluation failed")
        report["error_kind"] = result.error_kind  # the server's failures metric counts by it
        return report
    try:
        report["output"], cases = checked_result(result.output)
        if cases is not None:
            report["cases"] = _wire_cases(cases)
    except ResultError as exc:
        report["output"], report["error"], report["error_kind"] = None, str(exc), "bad_output"
        report.pop("cases", None)
    return report


def _wire_cases(rows: list[dict[str, Any]]) -> str:
    """The per-case rows as their own part of the report: gzip'd JSON lines in base64 (JSON carries the
    report; the rows never join the stored output). Too many bytes fail here, before the server refuses."""
    data = encode_cases(rows)
    if len(data) > MAX_CASES_GZIP_BYTES:
        raise ResultError(
            f"evaluate() returned 'cases' of {len(data) / 1024**2:.1f} MiB compressed; at most "
            f"{MAX_CASES_GZIP_BYTES // 1024**2} MiB can be stored (fewer or shorter values per case)"
        )
    return base64.b64encode(data).decode("ascii")


def _text(value: str | None) -> str:
    """Text the report can carry (a lone surrogate cannot be encoded as UTF-8; the server refuses NUL)."""
    return (value or "").replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _limits(job: dict[str, Any]) -> EvaluationLimits:
    """The job's limits (unknown keys from newer servers ignored)."""
    limits = job.get("limits") or {}
    return EvaluationLimits(**{k: v for k, v in limits.items() if k in EvaluationLimits.__dataclass_fields__})


def _sha(job: dict[str, Any]) -> str | None:
    return (job.get("submission_file") or {}).get("sha256")


def _shared(job: dict[str, Any]) -> bool:
    """Whether the submission file is also one of the challenge's own (a host re-submitting the annotation)."""
    sha = (job.get("submission_file") or {}).get("sha256")
    return any(sha == (job.get(key) or {}).get("sha256") for key in ("annotation", "evaluation_script"))


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
