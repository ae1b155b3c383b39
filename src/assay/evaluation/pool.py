"""The pool of warm evaluators the worker calls: ``EvaluatorPool.evaluate(job) -> EvaluationOutcome``.

Why warm evaluators: importing a host's script and parsing its annotations can take longer than
scoring one submission (EvalAI's worker preloads them for the same reason). The pool keeps up to
``max_warm`` idle evaluator processes, least recently used evicted first; each serves one request
at a time. An evaluator that crashed, timed out or ran out of memory is discarded, never reused.

The pool is thread-safe: the worker may evaluate several jobs at once, and chunked evaluation uses
several evaluators of one script in parallel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .cgroups import detect_cgroups, sweep_stale_groups
from .chunking import SplitProcess, start_splitter, stop_splitter
from .contract import EvaluationJob, EvaluationOutcome, validate_output
from .evaluator import CallResult, EvaluatorSpec, WarmEvaluator
from .handles import STOPPED, RunHandle, attached
from .sandbox import SandboxReport, resolve_sandbox
from .scripts import prepare_script, zip_folder
from .venvs import SetupError

log = logging.getLogger("assay.evaluation")

#: Default chunks per evaluator: more chunks than cores, so one that runs slow does not hold the merge.
#: At 8 the core the last chunks leave idle waits about half a chunk, 1/16 of the evaluation on 2 cores
#: (at 4 it was 1/8: ~0.5 s of 8.5 s at 10^6 items); each extra chunk costs one call (milliseconds).
CHUNKS_PER_EVALUATOR = 8


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` bytes, with a note saying how much was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return (
        data[:limit].decode("utf-8", errors="ignore")
        + f"\n[truncated {len(data) - limit} bytes: output is capped at {limit} bytes per evaluation]\n"
    )


class EvaluatorPool:
    """Warm, sandboxed evaluators keyed by job key, phase and limits.

    ``sandbox``: "auto" (bwrap when it works here, else rlimits only with a WARNING), "bwrap" (fail
    if bwrap cannot run) or "none". ``parallelism`` is how many evaluators score the chunks of one
    chunked evaluation locally (by default cut into ``CHUNKS_PER_EVALUATOR`` times as many chunks),
    or the default number of chunks on Dask; ``dask_scheduler`` (or the ``ASSAY_DASK_SCHEDULER``
    environment variable) sends the chunks to a Dask distributed cluster instead of local processes.
    ``use_cgroups=False`` leaves enforcement to namespaces and rlimits (cgroups are used by default
    wherever they are writable).
    """

    def __init__(
        self,
        workdir: Path,
        sandbox: str = "auto",
        max_warm: int = 4,
        parallelism: int | None = None,
        dask_scheduler: str | None = None,
        *,
        setup_timeout: float = 900.0,
        use_cgroups: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox_mode = sandbox
        self.report: SandboxReport = resolve_sandbox(sandbox)
        self.max_warm = max(0, max_warm)
        self.parallelism = max(1, parallelism or os.cpu_count() or 1)
        self.dask_scheduler = dask_scheduler or os.environ.get("ASSAY_DASK_SCHEDULER") or None
        self.setup_timeout = setup_timeout
        self.use_cgroups = use_cgroups
        if use_cgroups and detect_cgroups().usable:
            sweep_stale_groups(detect_cgroups())
        self.run_root = self.workdir / "run" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.run_root.mkdir(parents=True)
        os.chmod(self.run_root, 0o700)
        self._lock = threading.Lock()
        self._idle: OrderedDict[int, WarmEvaluator] = OrderedDict()
        self._busy: dict[int, WarmEvaluator] = {}
        self._closed = False
        self._dask_client: Any = None
        self._dask_connect_timeout = 30.0
        self._spare_splitter: subprocess.Popen | None = None  # see _keep_spare_splitter
        self.started_evaluators = 0

    # --- public API ------------------------------------------------------------------------------

    def evaluate(self, job: EvaluationJob, handle: RunHandle | None = None) -> EvaluationOutcome:
        """Score one submission. Never raises: every failure is an outcome with a reason.

        A failure of the pool itself (a full disk, a bug) is logged with its traceback and reported
        as a 'setup' error, so the worker can fail the submission instead of dying. ``handle.stop()``
        kills this evaluation's evaluator processes alone (they are discarded, never reused); the other
        evaluations in progress go on. A stopped handle's evaluation is not started.
        """
        started = time.monotonic()
        if handle is not None and handle.stopped:
            return self._failed((STOPPED, ""), started)
        try:
            return self._evaluate(job, started, handle)
        except Exception as exc:  # noqa: BLE001
            log.exception("evaluation of %s failed inside the pool", job.key)
            return self._failed((f"the evaluation could not be run: {type(exc).__name__}: {exc}", ""), started)

    def _evaluate(self, job: EvaluationJob, started: float, handle: RunHandle | None) -> EvaluationOutcome:
        spec, problem = self._spec(job)
        if spec is None:
            return self._failed(problem, started)
        ev, warm, start = self._acquire(spec, handle)
        if ev is None:
            return self._outcome(start, None, False, started)
        try:
            with attached(handle, ev.kill):
                if job.chunking is not None:
                    chunked = self._maybe_chunked(job, spec, ev, warm, started, handle)
                    if chunked is not None:
                        return chunked
                path = ev.stage_file(job.submission_file)
                result = ev.call({"op": "evaluate", "submission": path, "metadata": job.submission_metadata})
        finally:
            self._release(ev)
        return self._outcome(result, ev, warm, started)

    def evaluate_chunk(self, job: EvaluationJob) -> EvaluationOutcome:
        """Run the script's ``evaluate_chunk()`` on ``job.submission_file`` (one chunk); output = partial.

        Used by Dask tasks on remote machines; the partial is any JSON value the script returned.
        """
        started = time.monotonic()
        spec, problem = self._spec(job)
        if spec is None:
            return self._failed(problem, started)
        ev, warm, start = self._acquire(spec)
        if ev is None:
            return self._outcome(start, None, False, started)
        try:
            result = self._call_chunk(ev, job.submission_file, job.submission_metadata)
        finally:
            self._release(ev)
        return self._outcome(result, ev, warm, started, validate=False)

    def warm_count(self, key: str | None = None) -> int:
        """Idle warm evaluators (for ``key`` only, when given)."""
        with self._lock:
            return sum(1 for ev in self._idle.values() if key is None or ev.spec.key == key)

    @property
    def sandbox(self) -> str:
        return self.report.describe()

    def close(self) -> None:
        """Kill every evaluator (idle and busy) and remove the pool's run folder."""
        with self._lock:
            self._closed = True
            evaluators = list(self._idle.values()) + list(self._busy.values())
            self._idle.clear()
            spare, self._spare_splitter = self._spare_splitter, None
        if spare is not None:
            stop_splitter(spare)
        for ev in evaluators:
            ev.close(graceful=False)
        if self._dask_client is not None:
            with contextlib.suppress(Exception):
                self._dask_client.close()
            self._dask_client = None
        shutil.rmtree(self.run_root, ignore_errors=True)

    def __enter__(self) -> EvaluatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- warm evaluators -------------------------------------------------------------------------

    def _spec(self, job: EvaluationJob) -> tuple[EvaluatorSpec | None, tuple[str, str]]:
        if job.annotation_file is not None and not Path(job.annotation_file).is_file():
            return None, (f"the annotation file {Path(job.annotation_file).name} is missing", "")
        if not Path(job.submission_file).is_file():
            return None, (f"the submission file {Path(job.submission_file).name} is missing", "")
        try:
            script = prepare_script(
                Path(job.script_zip), self.workdir, environment=job.environment, setup_timeout=self.setup_timeout
            )
        except SetupError as exc:
            return None, (exc.message, exc.log)
        annotation = Path(job.annotation_file).resolve() if job.annotation_file is not None else None
        return EvaluatorSpec(job.key, job.phase_codename, job.limits, script, annotation), ("", "")

    def _acquire(
        self, spec: EvaluatorSpec, handle: RunHandle | None = None
    ) -> tuple[WarmEvaluator | None, bool, CallResult]:
        """An idle evaluator for ``spec`` (warm), or a newly started one; None with the start failure.
        A new one's start (the script's import and ``warm_up()``) is stopped by ``handle`` too."""
        dead: list[WarmEvaluator] = []
        found = None
        with self._lock:
            if self._closed:
                return None, False, CallResult(False, error="the evaluator pool is closed", error_kind="setup")
            for ev in reversed(self._idle.values()):
                if ev.spec.ident == spec.ident:
                    if ev.alive:
                        found = ev
                        break
                    dead.append(ev)
            for ev in dead:
                self._idle.pop(id(ev), None)
            if found is not None:
                self._idle.pop(id(found))
                self._busy[id(found)] = found
        for ev in dead:
            ev.close()
        if found is not None:
            return found, True, CallResult(True)
        ev = WarmEvaluator(spec, self.report, self.run_root, use_cgroups=self.use_cgroups)
        with attached(handle, ev.kill):
            start = ev.start()
        with self._lock:
            self.started_evaluators += 1
        if not start.ok:
            ev.close()
            return None, False, _with_sandbox(start, ev)
        with self._lock:
            if self._closed:
                ev.close()
                return None, False, CallResult(False, error="the evaluator pool is closed", error_kind="setup")
            self._busy[id(ev)] = ev
        return ev, False, start

    def _release(self, ev: WarmEvaluator) -> None:
        ev.clear_inbox()
        to_close: list[WarmEvaluator] = []
        with self._lock:
            self._busy.pop(id(ev), None)
            if self._closed or not ev.alive or self.max_warm == 0:
                to_close.append(ev)
            else:
                self._idle[id(ev)] = ev
                while len(self._idle) > self.max_warm:
                    _, oldest = self._idle.popitem(last=False)
                    to_close.append(oldest)
        for old in to_close:
            old.close(graceful=True)

    # --- chunked evaluation ----------------------------------------------------------------------

    def _maybe_chunked(
        self,
        job: EvaluationJob,
        spec: EvaluatorSpec,
        first: WarmEvaluator,
        warm: bool,
        started: float,
        handle: RunHandle | None = None,
    ) -> EvaluationOutcome | None:
        """The chunked outcome, or None when the plain evaluate() should run instead.

        Why this order: the extra evaluators are acquired (started, if need be) while the submission
        is being cut, the chunks are scored while the cut is being checked, and only the merge waits
        for that check. A cut that fails it (a key in two chunks, a malformed file) is thrown away
        with its partials and the whole file goes through evaluate(), which also reports what is wrong.
        """
        chunking = job.chunking
        assert chunking is not None
        caps = first.capabilities
        if not (caps.get("evaluate_chunk") and caps.get("merge_chunks")):
            return None
        if Path(job.submission_file).stat().st_size < chunking.min_bytes:
            return None
        count = chunking.chunk_count or self.parallelism * (1 if self.dask_scheduler else CHUNKS_PER_EVALUATOR)
        chunk_dir = self.workdir / "chunks" / uuid.uuid4().hex
        stages: dict[str, Any] = {}
        begun = time.monotonic()
        with self._lock:
            spare, self._spare_splitter = self._spare_splitter, None
        split = SplitProcess(
            Path(job.submission_file),
            count,
            chunk_dir,
            chunking.format,
            memory_bytes=job.limits.memory_bytes,
            timeout=job.limits.wall_seconds,
            process=spare,
        )
        helpers = _Helpers(self, spec, 0 if self.dask_scheduler else min(self.parallelism, count) - 1, handle)
        try:
            parts = split.parts()
            stages["split_s"] = time.monotonic() - begun
            stages["split_cpu_s"] = split.cut_cpu_seconds
            stages["split_started_ahead"] = split.started_ahead
            if not parts:
                return None
            if self.dask_scheduler:
                results = self._chunks_on_dask(job, spec, parts)
            else:
                results = self._chunks_locally(job, first, helpers, parts, stages)
            waited = time.monotonic()
            if not split.verified():
                log.info("chunks of %s failed their check; evaluating the whole file", job.key)
                return None
            stages["check_wait_s"] = time.monotonic() - waited
            stages["check_cpu_s"] = split.check_cpu_seconds
            return self._merge(job, first, warm, started, results, stages)
        finally:
            helpers.release()
            split.close()
            shutil.rmtree(chunk_dir, ignore_errors=True)
            self._keep_spare_splitter()

    def _keep_spare_splitter(self) -> None:
        """Start the next chunked evaluation's split process now, after this one's chunks are scored.

        Why: its interpreter start and imports were most of the split's CPU, and the split is serial.
        One idle process waits on its stdin (no CPU); ``close()`` kills it.
        """
        with self._lock:
            if self._closed or self._spare_splitter is not None:
                return
        spare = start_splitter()
        if spare is None:
            return
        with self._lock:
            if not self._closed and self._spare_splitter is None:
                self._spare_splitter, spare = spare, None
        if spare is not None:
            stop_splitter(spare)

    def _call_chunk(self, ev: WarmEvaluator, chunk: Path, metadata: dict) -> CallResult:
        path = ev.stage_file(chunk)
        try:
            return ev.call({"op": "evaluate_chunk", "chunk": path, "metadata": metadata}, measure_cpu=True)
        finally:
            ev.clear_inbox()

    def _chunks_locally(
        self, job: EvaluationJob, first: WarmEvaluator, helpers: _Helpers, parts: list[Path], stages: dict
    ) -> list[CallResult | None]:
        """Each evaluator takes the next chunk until none is left (or one failed): a slow or late
        evaluator (another job on its core, still starting) scores fewer chunks instead of holding the
        merge back. ``None`` marks a chunk not scored because another one failed."""
        results: list[CallResult | None] = [None] * len(parts)
        queue = iter(range(len(parts)))
        lock = threading.Lock()
        failed = threading.Event()
        begun = time.monotonic()

        def work(ev: WarmEvaluator) -> tuple[float, int]:
            cpu, done = 0.0, 0
            while not failed.is_set() and ev.alive:
                with lock:
                    index = next(queue, None)
                if index is None:
                    break
                result = self._call_chunk(ev, parts[index], job.submission_metadata)
                results[index] = result
                cpu, done = cpu + result.cpu_seconds, done + 1
                if not result.ok:
                    failed.set()
            return cpu, done

        def helper(n: int) -> tuple[float, int]:
            ev = helpers.get(n)
            return work(ev) if ev is not None else (0.0, 0)

        with ThreadPoolExecutor(max_workers=1 + helpers.count, thread_name_prefix="assay-chunk") as ex:
            futures = [ex.submit(work, first)] + [ex.submit(helper, n) for n in range(helpers.count)]
            per_evaluator = [f.result() for f in futures]
        stages["chunks_s"] = time.monotonic() - begun
        stages["chunk_cpu_s"] = [round(cpu, 3) for cpu, _ in per_evaluator]
        stages["chunks_per_evaluator"] = [done for _, done in per_evaluator]
        stages["evaluators_started"] = helpers.started
        if not failed.is_set() and any(r is None for r in results):
            # Every evaluator died or never started: report that rather than merge a partial sum.
            missing = next(i for i, r in enumerate(results) if r is None)
            results[missing] = helpers.failure or CallResult(
                False, error="no evaluator was left to score this chunk", error_kind="crash"
            )
        return results

    def _chunks_on_dask(self, job: EvaluationJob, spec: EvaluatorSpec, parts: list[Path]) -> list[CallResult]:
        from .dask_backend import evaluate_chunks_on_dask

        try:
            if self._dask_client is None:
                from distributed import Client

                self._dask_client = Client(self.dask_scheduler, timeout=self._dask_connect_timeout)
        except ImportError:
            return [_setup_failure("dask_scheduler is set but dask.distributed is not installed")]
        except Exception as exc:  # noqa: BLE001 - any connection problem is reported, not raised
            return [_setup_failure(f"cannot reach the Dask scheduler {self.dask_scheduler}: {exc}")]
        if Path(job.script_zip).is_dir():
            job = dataclasses.replace(job, script_zip=zip_folder(Path(job.script_zip), self.workdir))
        return evaluate_chunks_on_dask(self._dask_client, job, parts, sandbox_mode=self.sandbox_mode)

    def _merge(
        self,
        job: EvaluationJob,
        first: WarmEvaluator,
        warm: bool,
        started: float,
        results: list[CallResult | None],
        stages: dict[str, Any],
    ) -> EvaluationOutcome:
        n = len(results)
        limit = job.limits.max_output_bytes
        scored = [(i, r) for i, r in enumerate(results) if r is not None]
        stdout = "".join(_section(i, n, r.stdout) for i, r in scored)
        stderr = "".join(_section(i, n, r.stderr) for i, r in scored)
        failed = next(((i, r) for i, r in scored if not r.ok), None)
        if failed is not None:
            index, bad = failed
            result = CallResult(
                False,
                stdout=stdout,
                stderr=stderr,
                error=f"chunk {index + 1} of {n}: {bad.error}",
                error_kind=bad.error_kind,
            )
            outcome = self._outcome(result, first, warm, started, chunks=n)
        else:
            merging = time.monotonic()
            merged = first.call(
                {"op": "merge", "partials": [r.output for _, r in scored], "metadata": job.submission_metadata},
                measure_cpu=True,
            )
            _merged_cases(merged, [r.output for _, r in scored])
            stages["merge_s"] = time.monotonic() - merging
            stages["merge_cpu_s"] = merged.cpu_seconds
            merged.stdout = stdout + _section(n, n, merged.stdout, title="merge")
            merged.stderr = stderr + _section(n, n, merged.stderr, title="merge")
            outcome = self._outcome(merged, first, warm, started, chunks=n, function="merge_chunks")
        remote = sorted({f"{r.extra['host']} pid {r.extra['pid']}" for _, r in scored if r.extra.get("remote")})
        if remote:
            sandboxes = sorted({r.extra["sandbox"] for _, r in scored if r.extra.get("remote")})
            outcome.sandbox = (
                f"merge: {outcome.sandbox} || chunks on Dask workers ({', '.join(remote)}): {' / '.join(sandboxes)}"
            )
        outcome.stdout = cap_text(outcome.stdout, limit)
        outcome.stderr = cap_text(outcome.stderr, limit)
        outcome.stages = {k: round(v, 3) if isinstance(v, float) else v for k, v in stages.items()}
        return outcome

    # --- outcomes --------------------------------------------------------------------------------

    def _failed(self, problem: tuple[str, str], started: float) -> EvaluationOutcome:
        message, details = problem
        return EvaluationOutcome(
            ok=False,
            output=None,
            stdout="",
            stderr=cap_text(details, 1024**2),
            error=message,
            error_kind="setup",
            duration=time.monotonic() - started,
            sandbox=self.report.describe(),
        )

    def _outcome(
        self,
        result: CallResult,
        ev: WarmEvaluator | None,
        warm: bool,
        started: float,
        *,
        chunks: int | None = None,
        validate: bool = True,
        function: str = "evaluate",
    ) -> EvaluationOutcome:
        ok, output, error, kind = result.ok, result.output, result.error, result.error_kind
        if ok and validate:
            problem = validate_output(output, function=function)
            if problem is not None:
                ok, error, kind = False, problem, "bad_output"
        description = ev.description if ev is not None else result.extra.get("sandbox", self.report.describe())
        return EvaluationOutcome(
            ok=ok,
            output=output if ok else None,
            stdout=result.stdout,
            stderr=result.stderr,
            error=None if ok else (error or "the evaluation failed"),
            error_kind=None if ok else (kind or "crash"),  # type: ignore[arg-type]
            duration=time.monotonic() - started,
            sandbox=description,
            warm=warm,
            chunks=chunks,
        )


def _merged_cases(merged: CallResult, partials: list[Any]) -> None:
    """The chunks' per-case rows (``cases``) joined in chunk order, unless ``merge_chunks`` returned its own."""
    output = merged.output
    if not merged.ok or not isinstance(output, dict) or "cases" in output:
        return
    found = [p["cases"] for p in partials if isinstance(p, dict) and p.get("cases") is not None]
    if not found:
        return
    rows: list[Any] = []
    for part in found:
        if not isinstance(part, list):
            output["cases"] = part  # refused by the result contract, with its reason
            return
        rows.extend(part)
    output["cases"] = rows


def _section(index: int, total: int, text: str, title: str | None = None) -> str:
    if not text:
        return ""
    name = title or f"chunk {index + 1}/{total}"
    return f"----- {name} -----\n{text}" + ("" if text.endswith("\n") else "\n")


def _setup_failure(message: str) -> CallResult:
    return CallResult(False, error=message, error_kind="setup")


def _with_sandbox(result: CallResult, ev: WarmEvaluator) -> CallResult:
    result.extra = {**result.extra, "sandbox": ev.description}
    return result


class _Helpers:
    """The extra evaluators of one chunked evaluation, acquired in the background from its start.

    Why in the background: an evaluator that has to be started imports the script and runs its
    ``warm_up()``, which should overlap the cut of the submission rather than follow it; a helper
    that is still starting when the chunks are ready simply joins the work later.
    """

    def __init__(self, pool: EvaluatorPool, spec: EvaluatorSpec, count: int, handle: RunHandle | None = None) -> None:
        self.pool = pool
        self.count = count
        self.handle = handle  # the evaluation's: stopping it kills the helpers too
        self.failure: CallResult | None = None
        self._detach: dict[int, Any] = {}
        self._ex = ThreadPoolExecutor(max_workers=count, thread_name_prefix="assay-chunk-start") if count else None
        self._futures = [self._ex.submit(self._acquire, spec) for _ in range(count)] if self._ex else []

    def _acquire(self, spec: EvaluatorSpec) -> tuple[WarmEvaluator | None, bool, CallResult]:
        try:
            found = self.pool._acquire(spec, self.handle)
            if found[0] is not None and self.handle is not None:
                self._detach[id(found[0])] = self.handle.attach(found[0].kill)
            return found
        except Exception as exc:  # noqa: BLE001 - a helper that cannot start only means fewer helpers
            log.exception("an extra evaluator for chunks could not be acquired")
            return None, False, _setup_failure(f"an extra evaluator could not start: {type(exc).__name__}: {exc}")

    def get(self, n: int) -> WarmEvaluator | None:
        """Helper ``n`` once it is ready; None (and ``failure`` set) if it could not start."""
        ev, _warm, start = self._futures[n].result()
        if ev is None:
            log.warning("an extra evaluator for chunks could not start: %s", start.error)
            self.failure = start
        return ev

    @property
    def started(self) -> int:
        """How many helpers were started for this evaluation (the others were already warm)."""
        return sum(1 for f in self._futures if f.done() and f.result()[0] is not None and not f.result()[1])

    def release(self) -> None:
        """Give every helper back to the pool, now or, for one still starting, when it is ready."""
        for future in self._futures:
            future.add_done_callback(self._give_back)
        if self._ex is not None:
            self._ex.shutdown(wait=False)

    def _give_back(self, future: Future) -> None:
        ev = future.result()[0]
        if ev is not None:
            self._detach.pop(id(ev), lambda: None)()
            self.pool._release(ev)
