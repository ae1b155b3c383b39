"""Resource limits of one evaluation, and the words used to explain them to participants."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EvaluationLimits:
    """What one evaluation may use. Frozen and hashable: a warm evaluator is started with one set.

    In a warm evaluator the limits apply per evaluation: wall and CPU time are measured from the start
    of each request; memory (RLIMIT_AS and the memory cgroup) covers the warm state plus the request.
    ``max_file_bytes`` caps any single file the script writes (RLIMIT_FSIZE); by default it is
    ``tmp_bytes``, the size of the private ``/tmp``.

    ``rlimit_as=False`` drops the address-space rlimit, for frameworks that reserve far more virtual
    memory than they use (JAX, CUDA builds of PyTorch); the memory cgroup, where there is one, then
    enforces ``memory_bytes`` alone (plus ``tmp_bytes`` for the tmpfs).
    """

    wall_seconds: float = 600
    cpu_seconds: float = 600
    memory_bytes: int = 2 * 1024**3
    max_processes: int = 64
    max_output_bytes: int = 1024**2
    tmp_bytes: int = 256 * 1024**2
    max_open_files: int = 1024
    max_file_bytes: int | None = None
    rlimit_as: bool = True

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "cpu_seconds", "memory_bytes", "max_processes", "tmp_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"EvaluationLimits.{name} must be positive")
        if self.max_output_bytes < 0:
            raise ValueError("EvaluationLimits.max_output_bytes must not be negative")
        if self.max_processes < 4:
            raise ValueError("EvaluationLimits.max_processes must be at least 4 (Python needs a few)")
        if self.max_open_files < 64:
            raise ValueError("EvaluationLimits.max_open_files must be at least 64")

    @property
    def file_bytes(self) -> int:
        return self.max_file_bytes if self.max_file_bytes is not None else self.tmp_bytes

    def for_child(self) -> dict:
        """The limits as the sandboxed child reads them (plain JSON)."""
        data = asdict(self)
        data["max_file_bytes"] = self.file_bytes
        return data


def mib(n: int) -> str:
    """Bytes as whole MiB, the unit participants see in limit messages."""
    return f"{n // 1024**2} MiB"


def seconds(value: float) -> str:
    return f"{value:g} s"


def timeout_message(limits: EvaluationLimits, where: str = "") -> str:
    return f"evaluation exceeded the {seconds(limits.wall_seconds)} time limit{where}"


def cpu_message(limits: EvaluationLimits, where: str = "") -> str:
    return f"evaluation exceeded the {seconds(limits.cpu_seconds)} CPU time limit{where}"


def memory_message(limits: EvaluationLimits, where: str = "") -> str:
    return f"evaluation ran out of memory{where} (limit {mib(limits.memory_bytes)})"
