"""Chunks of one submission evaluated on a Dask distributed cluster, each in the usual sandbox.

Why Dask: a submission too large for one machine's cores can be spread over a cluster the host or the
platform already runs, with no broker of Assay's own. Dask only moves bytes and calls a function:
on each Dask worker, ``run_chunk_task`` writes the script zip, the annotation and its chunk to a local
folder and runs them through a process-wide ``EvaluatorPool`` of that machine, so the chunk runs in
the same sandbox, with the same limits, as locally, and later chunks of the same script reuse the warm
evaluator. The partials come back to the caller, which merges them in its own warm evaluator.

Imported only when a scheduler is configured: ``distributed`` is an optional dependency.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .contract import EvaluationJob
from .evaluator import CallResult
from .limits import EvaluationLimits
from .scripts import file_sha256

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - only imported when a scheduler is configured
    WorkerPlugin = object  # type: ignore[assignment,misc]

_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()
TRANSFER_SECONDS = 300.0  # on top of the wall limit: shipping inputs and starting remote evaluators


def _local_pool(sandbox_mode: str) -> Any:
    """The Dask worker process's own pool (one per sandbox mode), closed when the process ends."""
    from .pool import EvaluatorPool

    with _pools_lock:
        pool = _pools.get(sandbox_mode)
        if pool is None:
            # Shared by every Dask worker process of the machine: scripts, venvs and inputs are
            # content-addressed and written under locks or atomically, so they are built once.
            workdir = Path(os.environ.get("ASSAY_DASK_WORKDIR") or Path(tempfile.gettempdir()) / "assay-dask")
            pool = EvaluatorPool(workdir, sandbox=sandbox_mode, max_warm=2, parallelism=1)
            _pools[sandbox_mode] = pool
            atexit.register(pool.close)
        return pool


def close_local_pools() -> None:
    """Close the pools of this process (called by the worker plugin on Dask worker shutdown)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _write_once(path: Path, data: bytes) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def _input_paths(payload: dict) -> tuple[Path, Path | None]:
    """Where this machine keeps the job's script and annotation: named by their sha256, written once."""
    inputs = _local_pool(payload["sandbox"]).workdir / "inputs"
    annotation = None
    if payload["annotation_sha"]:
        annotation = inputs / payload["annotation_sha"] / payload["annotation_name"]
    return inputs / f"{payload['script_sha']}.zip", annotation


def holds_inputs(payload: dict) -> bool:
    """Runs on every Dask worker (``client.run``): whether the job's script and annotation are already here."""
    script, annotation = _input_paths(payload)
    return script.is_file() and (annotation is None or annotation.is_file())


def store_inputs(payload: dict, script_bytes: bytes, annotation_bytes: bytes | None) -> bool:
    """Runs on the Dask workers that lack them (``client.run``): write the script and annotation."""
    script, annotation = _input_paths(payload)
    _write_once(script, script_bytes)
    if annotation is not None and annotation_bytes is not None:
        _write_once(annotation, annotation_bytes)
    return True


def run_chunk_task(payload: dict, chunk_bytes: bytes) -> dict:
    """Runs on a Dask worker: one chunk through the local sandboxed pool; returns a CallResult as a dict.

    The script and annotation are already on this machine (``store_inputs``): the task is only sent to
    workers that hold them.
    """
    pool = _local_pool(payload["sandbox"])
    script, annotation = _input_paths(payload)
    if not holds_inputs(payload):
        raise FileNotFoundError(f"the script or annotation of {payload['key']} is not on this Dask worker")
    chunk_dir = pool.workdir / "chunks" / uuid.uuid4().hex
    chunk = _write_once(chunk_dir / payload["chunk_name"], chunk_bytes)
    try:
        job = EvaluationJob(
            key=payload["key"],
            script_zip=script,
            annotation_file=annotation,
            submission_file=chunk,
            phase_codename=payload["phase"],
            submission_metadata=payload["metadata"],
            limits=EvaluationLimits(**payload["limits"]),
            environment=payload["environment"],
        )
        outcome = pool.evaluate_chunk(job)
    finally:
        chunk.unlink(missing_ok=True)
        chunk_dir.rmdir()
    return {
        "ok": outcome.ok,
        "warm": outcome.warm,
        "output": outcome.output,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "error": outcome.error,
        "error_kind": outcome.error_kind,
        "sandbox": outcome.sandbox,
        "host": os.uname().nodename,
        "pid": os.getpid(),
    }


class ClosePoolsPlugin(WorkerPlugin):
    """Dask worker plugin: close this module's pools (and their evaluators) when the worker stops."""

    name = "assay-evaluation-pools"

    def setup(self, worker: Any) -> None:
        pass

    def teardown(self, worker: Any) -> None:
        close_local_pools()


def evaluate_chunks_on_dask(
    client: Any, job: EvaluationJob, parts: list[Path], *, sandbox_mode: str
) -> list[CallResult]:
    """Ship the inputs, run every chunk as a Dask task, and return their results in chunk order."""
    from distributed import wait

    if not getattr(client, "_assay_plugin_registered", False):
        try:
            client.register_plugin(ClosePoolsPlugin(), name=ClosePoolsPlugin.name)
            client._assay_plugin_registered = True
        except Exception:  # noqa: BLE001 - the plugin only tidies up; chunks run without it
            pass
    annotation = Path(job.annotation_file) if job.annotation_file is not None else None
    payload = {
        "key": job.key,
        "phase": job.phase_codename,
        "metadata": job.submission_metadata,
        "limits": asdict(job.limits),
        "environment": job.environment,
        "sandbox": sandbox_mode,
        "script_sha": file_sha256(Path(job.script_zip)),
        "annotation_sha": file_sha256(annotation) if annotation is not None else "",
        "annotation_name": annotation.name if annotation is not None else "",
    }
    workers = _ship_inputs(client, payload, Path(job.script_zip), annotation)
    if not workers:
        return [CallResult(False, error="the Dask cluster has no worker", error_kind="setup") for _ in parts]
    chunk_fs = client.scatter([p.read_bytes() for p in parts], workers=workers)
    futures = [
        client.submit(run_chunk_task, {**payload, "chunk_name": part.name}, chunk_f, workers=workers, pure=False)
        for part, chunk_f in zip(parts, chunk_fs, strict=True)
    ]
    timeout = job.limits.wall_seconds + TRANSFER_SECONDS
    results: list[CallResult] = []
    try:
        wait(futures, timeout=timeout)
    except Exception:  # noqa: BLE001 - distributed raises its own TimeoutError type
        pass
    for index, future in enumerate(futures):
        if future.status != "finished":
            if future.status == "error":
                error = f"the Dask task for chunk {index + 1} failed: {future.exception()!r}"
            else:
                error = f"the Dask task for chunk {index + 1} did not finish within {timeout:g} s"
                future.cancel()
            results.append(CallResult(False, error=error, error_kind="setup"))
            continue
        data = future.result()
        results.append(
            CallResult(
                data["ok"],
                output=data["output"],
                stdout=data["stdout"],
                stderr=data["stderr"],
                error=data["error"],
                error_kind=data["error_kind"],
                extra={"sandbox": data["sandbox"], "host": data["host"], "pid": data["pid"], "remote": True},
            )
        )
    return results


def _ship_inputs(client: Any, payload: dict, script: Path, annotation: Path | None) -> list[str]:
    """The workers that hold the job's script and annotation, after sending them to those that did not.

    Why: they were broadcast with every evaluation (a 25 MB annotation pickled and sent to each worker
    before the first chunk could start) although each machine keeps them on disk by sha256. A worker
    that joins later gets no chunk of this evaluation.
    """
    held = client.run(holds_inputs, payload)
    lacking = [worker for worker, ok in held.items() if not ok]
    if lacking:
        script_bytes = script.read_bytes()
        annotation_bytes = annotation.read_bytes() if annotation is not None else None
        client.run(store_inputs, payload, script_bytes, annotation_bytes, workers=lacking)
    return sorted(held)
