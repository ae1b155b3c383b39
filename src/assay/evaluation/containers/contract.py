"""What a container backend is asked to run, what it reports back, and the rules every backend shares.

The same :class:`ContainerRun` runs under Docker on one machine and as a Kubernetes Job at scale, so
the description is backend-neutral: an image, its command, read-only inputs, one writable output
folder, :class:`~assay.evaluation.limits.EvaluationLimits`, and a network mode with only two values.

``network="none"``
    No network at all (only loopback).
``network="internal"``
    Used by :meth:`ContainerBackend.run_together`: the containers of one group share a private
    loopback-only network and nothing else is reachable (Docker: the peers join the first
    container's empty network namespace; Kubernetes: containers of one pod under a deny-all
    NetworkPolicy). It is deliberately not a bridge: a bridge gives the host an address the
    containers could reach.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from ..handles import RunHandle
from ..limits import EvaluationLimits

NetworkMode = Literal["none", "internal"]

#: Where a run's writable output folder appears inside the container (EvalAI's SUBMISSION_PATH).
OUTPUT_PATH = "/output"
#: The user a run gets when neither the run nor the image names a non-root one.
FALLBACK_USER = "65534:65534"


class ContainerUnavailable(RuntimeError):
    """The container engine (Docker daemon, Kubernetes API, SDK) cannot be used from here."""


class UnsafeRun(ValueError):
    """The run asks for something the platform never allows (root, a relative mount, ...)."""


def is_root_user(user: str | None) -> bool:
    """Whether an image's ``USER`` runs as root: empty, ``root``, ``0``, ``root:*`` or ``0:*``.

    The same rule Grand Challenge applies at upload; a root *group* (``1000:0``) is allowed.
    """
    name = (user or "").strip().split(":", 1)[0]
    return name in ("", "root", "0")


def numeric_user(user: str | None) -> tuple[int, int | None] | None:
    """``(uid, gid)`` when ``user`` is numeric (``"1000"``, ``"1000:1000"``), else None.

    Kubernetes can only prove ``runAsNonRoot`` for numeric users, so the Job backend needs them.
    """
    match = re.fullmatch(r"\s*(\d+)(?::(\d+))?\s*", user or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


@dataclass(frozen=True)
class ContainerRun:
    """One container to run to completion under limits.

    ``inputs`` maps host paths to absolute container paths, always mounted read-only; ``output_dir``
    (a host folder) is mounted writable at ``/output``. ``user`` overrides the image's ``USER``;
    root is refused either way. ``cpus`` is the CPU share (``EvaluationLimits`` has no core count).
    ``runtime`` names an alternative OCI runtime (e.g. gVisor's ``runsc``) for this run.
    """

    image: str
    command: Sequence[str] | None = None
    inputs: Mapping[Path, str] = field(default_factory=dict)
    output_dir: Path | None = None
    limits: EvaluationLimits = field(default_factory=EvaluationLimits)
    network: NetworkMode = "none"
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    cpus: float = 1.0
    name: str = "run"
    runtime: str | None = None

    def __post_init__(self) -> None:
        if self.network not in ("none", "internal"):
            raise UnsafeRun(f"network must be 'none' or 'internal', not {self.network!r}")
        if self.user is not None and is_root_user(self.user):
            raise UnsafeRun(f"containers never run as root (user {self.user!r} was asked for)")
        if self.cpus <= 0:
            raise UnsafeRun("cpus must be positive")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", self.name):
            raise UnsafeRun(f"run name {self.name!r} must be a short DNS label (lowercase letters, digits, '-')")
        for target in self.inputs.values():
            if not target.startswith("/") or target in ("/", OUTPUT_PATH, "/tmp") or ".." in target.split("/"):
                raise UnsafeRun(f"input mount point {target!r} must be an absolute path other than /, /tmp, /output")


@dataclass
class ContainerOutcome:
    """How one container ended. ``stdout``/``stderr`` keep the last ``max_output_bytes`` of each.

    ``timed_out`` means the wall-clock limit killed it; ``stopped`` that it was still running when
    the primary container of its group finished (expected for agents); ``image_digest`` is the
    image's content ID (``sha256:…``) that actually ran, for reproducibility records.
    """

    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    stdout: str
    stderr: str
    duration: float
    image_digest: str | None
    stopped: bool = False
    error: str | None = None  # the engine could not start or watch the container

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.oom_killed or self.timed_out or self.error)


@runtime_checkable
class ContainerBackend(Protocol):
    """Runs containers under limits; Docker on one machine, Kubernetes Jobs at scale."""

    name: str

    def run(self, run: ContainerRun, handle: RunHandle | None = None) -> ContainerOutcome:
        """Run one container with ``network="none"`` and wait for it (at most its wall limit).

        ``handle.stop()`` ends this run alone (its outcome's ``error`` then says so); a stopped handle's
        run is not started."""
        ...

    def run_together(self, runs: Sequence[ContainerRun], handle: RunHandle | None = None) -> list[ContainerOutcome]:
        """Run containers side by side on one private loopback network; ``runs[0]`` is the primary.

        The group ends when the primary exits (the others are stopped) or at the primary's wall limit,
        or when ``handle`` is stopped (the whole group, and nothing else the backend runs).
        """
        ...

    def describe(self) -> str:
        """The isolation in force, in words for operators and outcome records."""
        ...

    def stop_all(self) -> None:
        """End every run in progress at once (the worker is shutting down); they are cleaned up as usual."""
        ...


def tail_text(data: bytes, limit: int) -> str:
    """The last ``limit`` bytes of a log as text, saying how much was cut (the end is where errors are)."""
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace")
    cut = len(data) - limit
    return f"[first {cut} bytes cut: logs are capped at {limit} bytes]\n" + data[cut:].decode("utf-8", errors="replace")
