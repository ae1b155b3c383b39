"""Run participant and host containers on a Docker Engine, with every limit the engine can enforce.

Each run gets: no network (or a peer's empty network namespace, for agent ↔ environment runs),
memory with swap equal to it (so exceeding it is an OOM kill, reported as such), a CPU share, a
process limit (a fork bomb stops there), a read-only root filesystem with a sized ``/tmp`` tmpfs,
every capability dropped, ``no-new-privileges``, a non-root user, ``nofile``/``fsize``/``cpu``
ulimits, a wall-clock limit enforced by killing the container, on-disk logs capped by the log driver,
and removal of the container afterwards whatever happened. An alternative OCI runtime such as
gVisor's ``runsc`` is used when named (``runtime=`` or ``ASSAY_CONTAINER_RUNTIME``), never required.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..handles import STOPPED, RunHandle
from .contract import (
    FALLBACK_USER,
    OUTPUT_PATH,
    ContainerOutcome,
    ContainerRun,
    ContainerUnavailable,
    UnsafeRun,
    is_root_user,
    tail_text,
)

log = logging.getLogger("assay.evaluation.containers")

try:  # the SDK is the optional extra assay[containers]; say so instead of failing at import
    import docker
    import docker.errors
    import requests.exceptions
    from docker.types import LogConfig, Ulimit
except ImportError:  # pragma: no cover - exercised only without the extra
    docker = None  # type: ignore[assignment]

LABEL = "assay.container-run"
OWNER_LABEL = "assay.container-owner"  # which backend instance started it, for stop_all()
#: gVisor's sandbox needs a few hundred tasks of its own; a lower pids limit crashes it (sandbox.md).
RUNSC_MIN_PIDS = 256


class DockerBackend:
    """Docker Engine backend. ``client`` is a ``docker.DockerClient`` (default: ``docker.from_env()``).

    The daemon is contacted lazily, so constructing the backend never fails; the first run raises
    :class:`ContainerUnavailable` with the reason when no engine answers.
    """

    name = "docker"

    def __init__(self, client: Any | None = None, *, runtime: str | None = None, timeout: float = 60.0) -> None:
        self._docker = client
        self.runtime = runtime if runtime is not None else (os.environ.get("ASSAY_CONTAINER_RUNTIME") or None)
        self.timeout = timeout
        self.owner = uuid.uuid4().hex

    # -- engine --------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._docker is None:
            if docker is None:
                raise ContainerUnavailable(
                    "the Docker SDK is not installed: pip install '.[containers]' in Assay's checkout"
                )
            try:
                self._docker = docker.from_env(timeout=int(self.timeout))
                self._docker.ping()
            except docker.errors.DockerException as exc:
                self._docker = None
                raise ContainerUnavailable(
                    f"no Docker engine answers ({exc}); install docker.io and start dockerd, or set DOCKER_HOST"
                ) from exc
        return self._docker

    def describe(self) -> str:
        runtime = self.runtime or "runc"
        return (
            f"docker (runtime {runtime}; no network; read-only root; all capabilities dropped; "
            "no-new-privileges; non-root user; memory, CPU, pids and ulimits enforced)"
        )

    def stop_all(self) -> None:
        """Kill every container this backend is running (a worker shutting down); their runs then end
        at once, reported as killed, and are cleaned up as usual."""
        for container in self.client.containers.list(filters={"label": f"{OWNER_LABEL}={self.owner}"}):
            _kill(container)

    # -- running -------------------------------------------------------------------------------------
    def run(self, run: ContainerRun, handle: RunHandle | None = None) -> ContainerOutcome:
        if run.network != "none":
            raise UnsafeRun("a single run has network 'none'; use run_together() for a private network")
        return self.run_together([run], handle)[0]

    def run_together(self, runs: Sequence[ContainerRun], handle: RunHandle | None = None) -> list[ContainerOutcome]:
        """The group's containers; ``handle.stop()`` kills these (by their own objects) and nothing else."""
        if not runs:
            return []
        if handle is not None and handle.stopped:
            return [_failed(STOPPED, None) for _ in runs]
        client = self.client
        detach: list[Any] = []
        containers: list[Any | None] = []  # index-aligned with runs; None when it never started
        to_remove: list[Any] = []
        outcomes: list[ContainerOutcome | None] = [None] * len(runs)
        digests: list[str | None] = [None] * len(runs)
        started = time.monotonic()
        try:
            for index, run in enumerate(runs):
                network = "none" if index == 0 else f"container:{containers[0].id}"
                try:
                    container, digests[index] = self._create(client, run, network)
                    to_remove.append(container)
                    container.start()
                    containers.append(container)
                    if handle is not None:  # a stop that came first kills it at once
                        detach.append(handle.attach(functools.partial(_kill, container)))
                except docker.errors.DockerException as exc:
                    outcomes[index] = _failed(f"could not start the container: {_explain(exc)}", digests[index])
                    containers.append(None)
                    if index == 0:  # nothing for the others to join
                        skipped = _failed("not started: the primary container could not start", None)
                        return [outcomes[0], *[skipped] * (len(runs) - 1)]
            timed_out = self._wait(containers[0], runs[0].limits.wall_seconds)
            duration = time.monotonic() - started
            if handle is not None and handle.stopped:  # killed for the job's end: no outcome of the run's own
                return [_failed(STOPPED, digest) for digest in digests]
            for index, container in enumerate(containers):
                if container is None:
                    continue
                stopped = False
                if index > 0:
                    container.reload()
                    if container.attrs["State"].get("Running"):
                        _kill(container)
                        stopped = not timed_out
                outcomes[index] = self._collect(
                    container, runs[index], digests[index], duration, timed_out=timed_out, stopped=stopped
                )
            return [o if o is not None else _failed("not run", None) for o in outcomes]
        finally:
            for undo in detach:
                undo()
            for container in to_remove:
                _remove(container)

    def _create(self, client: Any, run: ContainerRun, network_mode: str) -> tuple[Any, str]:
        try:
            image = client.images.get(run.image)
        except docker.errors.ImageNotFound as exc:
            raise docker.errors.DockerException(f"image {run.image!r} is not loaded on this engine") from exc
        image_user = (image.attrs.get("Config") or {}).get("User") or ""
        user = run.user or (image_user if not is_root_user(image_user) else FALLBACK_USER)
        limits = run.limits
        volumes: dict[str, dict[str, str]] = {}
        for host, target in run.inputs.items():
            host = Path(host)
            if not host.is_absolute() or not host.exists():
                raise UnsafeRun(f"input {host} must be an existing absolute path")
            volumes[str(host)] = {"bind": target, "mode": "ro"}
        if run.output_dir is not None:
            out = Path(run.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            out.chmod(0o777)  # the image's user is not ours; the parent folder keeps others out
            volumes[str(out.resolve())] = {"bind": OUTPUT_PATH, "mode": "rw"}
        runtime = run.runtime or self.runtime
        pids = limits.max_processes if runtime != "runsc" else max(limits.max_processes, RUNSC_MIN_PIDS)
        log_bytes = max(limits.max_output_bytes, 64 * 1024)
        kwargs: dict[str, Any] = dict(
            command=list(run.command) if run.command is not None else None,
            user=user,
            network_mode=network_mode,
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=int(run.cpus * 1e9),
            pids_limit=pids,
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            ulimits=[
                Ulimit(name="nofile", soft=limits.max_open_files, hard=limits.max_open_files),
                Ulimit(name="fsize", soft=limits.file_bytes, hard=limits.file_bytes),
                Ulimit(name="cpu", soft=math.ceil(limits.cpu_seconds), hard=math.ceil(limits.cpu_seconds) + 1),
            ],
            environment=dict(run.env),
            volumes=volumes,
            log_config=LogConfig(type="json-file", config={"max-size": str(log_bytes), "max-file": "1"}),
            labels={LABEL: run.name, OWNER_LABEL: self.owner},
            detach=True,
            stdin_open=False,
            tty=False,
        )
        if runtime:
            kwargs["runtime"] = runtime
        return client.containers.create(image.id, **kwargs), image.id

    def _wait(self, container: Any, wall_seconds: float) -> bool:
        """Wait for the container; kill it at the wall limit. True when the limit killed it."""
        try:
            container.wait(timeout=wall_seconds)
            return False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            _kill(container)
            try:
                container.wait(timeout=30)
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                log.warning("container %s did not stop after kill", container.id[:12])
            return True

    def _collect(
        self, container: Any, run: ContainerRun, digest: str | None, duration: float, *, timed_out: bool, stopped: bool
    ) -> ContainerOutcome:
        container.reload()
        state = container.attrs["State"]
        cap = run.limits.max_output_bytes
        try:
            stdout = container.logs(stdout=True, stderr=False)
            stderr = container.logs(stdout=False, stderr=True)
        except docker.errors.DockerException as exc:
            stdout, stderr = b"", f"[logs unavailable: {exc}]".encode()
        return ContainerOutcome(
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            timed_out=timed_out,
            stdout=tail_text(stdout, cap),
            stderr=tail_text(stderr, cap),
            duration=duration,
            image_digest=digest,
            stopped=stopped,
        )


def _failed(error: str, digest: str | None) -> ContainerOutcome:
    return ContainerOutcome(None, False, False, "", "", 0.0, digest, error=error)


def _explain(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def _kill(container: Any) -> None:
    try:
        container.kill()
    except docker.errors.APIError:
        pass  # already gone


def _remove(container: Any, attempts: int = 40) -> None:
    """Remove a container, retrying while the engine is still reaping it (a fork bomb's many processes
    can keep ``docker rm -f`` busy for a moment)."""
    for attempt in range(attempts):
        try:
            container.remove(force=True, v=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if attempt == attempts - 1:
                log.warning("could not remove container %s: %s", container.id[:12], exc)
                return
            time.sleep(0.25)
