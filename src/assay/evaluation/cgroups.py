"""Best-effort cgroups for one evaluator: memory and process caps, CPU accounting, and a sure kill.

Why on top of rlimits: RLIMIT_AS is per process (a script that forks ten children gets ten times the
memory), RLIMIT_NPROC needs a non-root uid, and only a cgroup can account CPU time of a whole process
tree and kill every process in it, however it daemonised.

Detected at run time, because machines differ: cgroup v1 (separate ``memory``, ``pids``, ``cpuacct``
hierarchies, as on this project's machines) or v2 (one unified tree, as on most production hosts).
Groups are created *below the worker's own cgroup*, so the worker's container or service limits still
cover them. When nothing is writable, the pool runs without cgroups and says so in
``EvaluationOutcome.sandbox``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

_counter = itertools.count()


@dataclass(frozen=True)
class CgroupSupport:
    """Which controllers this process can create child groups in, and where."""

    version: int | None
    bases: dict[str, Path] = field(default_factory=dict)  # controller -> the worker's own group folder
    reason: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.bases)

    def describe(self) -> str:
        if not self.usable:
            return f"no cgroups ({self.reason})"
        return f"cgroup v{self.version}: {', '.join(sorted(self.bases))}"


def _own_paths() -> dict[str, str]:
    """Controller name ('' for the v2 tree) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _mounts() -> dict[str, Path]:
    """Controller name ('' for cgroup2) -> mount point."""
    mounts: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        if parts[2] == "cgroup2":
            mounts.setdefault("", Path(parts[1]))
        elif parts[2] == "cgroup":
            for opt in parts[3].split(","):
                mounts.setdefault(opt, Path(parts[1]))
    return mounts


def _writable_dir(path: Path) -> bool:
    probe = path / f"assay-probe-{os.getpid()}-{next(_counter)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True


@lru_cache(maxsize=1)
def detect_cgroups() -> CgroupSupport:
    """Probe once per process: create and remove a child group in each controller we want."""
    own, mounts = _own_paths(), _mounts()
    v1 = {}
    for controller in ("memory", "pids", "cpuacct"):
        if controller in mounts and controller in own:
            base = mounts[controller] / own[controller].lstrip("/")
            if _writable_dir(base):
                v1[controller] = base
    if v1:
        return CgroupSupport(1, v1)
    if "" in mounts and "" in own:
        base = mounts[""] / own[""].lstrip("/")
        try:
            enabled = set((base / "cgroup.subtree_control").read_text().split())
        except OSError:
            enabled = set()
        if not enabled:
            with contextlib.suppress(OSError):
                (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                enabled = set((base / "cgroup.subtree_control").read_text().split())
        wanted = {"memory", "pids"} & enabled
        if wanted and _writable_dir(base):
            bases = {c: base for c in wanted}
            bases["cpu"] = base  # cpu.stat exists in every v2 group, controller enabled or not
            return CgroupSupport(2, bases)
        return CgroupSupport(None, {}, "cgroup v2 has no memory/pids controllers delegated to this process")
    return CgroupSupport(None, {}, "no writable cgroup hierarchy")


def sweep_stale_groups(support: CgroupSupport) -> int:
    """Remove empty groups left by worker processes that died without cleaning up (SIGKILL, OOM).

    Only ``assay-eval-<pid>-*`` groups whose creating pid is gone are touched; a group that still
    holds processes cannot be removed and is left alone.
    """
    removed = 0
    for base in set(support.bases.values()):
        try:
            entries = list(base.glob("assay-eval-*"))
        except OSError:
            continue
        for folder in entries:
            try:
                pid = int(folder.name.split("-")[2])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid() or _pid_alive(pid):
                continue
            if _remove_stale(folder):
                removed += 1
    return removed


def _remove_stale(folder: Path, attempts: int = 20) -> bool:
    """Kill whatever an orphaned group still holds (its worker is dead), then remove it.

    Right after a SIGKILL the kernel may still be tearing the processes down; retry briefly.
    """
    for _ in range(attempts):
        try:
            pids = [int(x) for x in (folder / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return False
        except OSError:
            time.sleep(0.05)
    return False


def group_holds_only_zombies(folder: Path) -> bool:
    """True when every process still listed in a group has exited and waits to be reaped.

    Such a group cannot be removed until its processes' new parent (init) reaps them; some
    container inits never do. Nothing runs in it, so it holds no resources but a folder.
    """
    try:
        pids = [int(x) for x in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return False
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone since
        if stat.rpartition(")")[2].split()[0] != "Z":
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EvaluatorCgroup:
    """The cgroup(s) of one warm evaluator: created before its first request, removed when it dies."""

    def __init__(self, support: CgroupSupport, memory_bytes: int, max_pids: int) -> None:
        self.support = support
        self.dirs: dict[str, Path] = {}
        self.applied: list[str] = []
        name = f"assay-eval-{os.getpid()}-{next(_counter)}"
        for controller, base in support.bases.items():
            folder = base / name
            if folder in self.dirs.values():
                self.dirs[controller] = folder
                continue
            try:
                folder.mkdir()
            except OSError:
                continue
            self.dirs[controller] = folder
        self._set_limits(memory_bytes, max_pids)

    def _write(self, controller: str, filename: str, value: str) -> bool:
        folder = self.dirs.get(controller)
        if folder is None:
            return False
        try:
            (folder / filename).write_text(value)
            return True
        except OSError:
            return False

    def _set_limits(self, memory_bytes: int, max_pids: int) -> None:
        v2 = self.support.version == 2
        if v2:
            if self._write("memory", "memory.max", str(memory_bytes)):
                self._write("memory", "memory.swap.max", "0")
                self.applied.append(f"memory {memory_bytes // 1024**2} MiB")
        elif self._write("memory", "memory.limit_in_bytes", str(memory_bytes)):
            self._write("memory", "memory.memsw.limit_in_bytes", str(memory_bytes))
            self.applied.append(f"memory {memory_bytes // 1024**2} MiB")
        if self._write("pids", "pids.max", str(max_pids)):
            self.applied.append(f"pids {max_pids}")
        if "cpuacct" in self.dirs or "cpu" in self.dirs:
            self.applied.append("CPU accounting")

    def add(self, pid: int) -> None:
        """Move ``pid`` into every group (threads follow: cgroup.procs moves the whole process)."""
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                (folder / "cgroup.procs").write_text(str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                found.update(int(x) for x in (folder / "cgroup.procs").read_text().split())
        return found

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process that ever ran in the group (including reaped ones)."""
        if "cpuacct" in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        if "cpu" in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                for line in (self.dirs["cpu"] / "cpu.stat").read_text().splitlines():
                    key, value = line.split()
                    if key == "usage_usec":
                        return int(value) / 1e6
        return None

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding the memory limit so far."""
        folder = self.dirs.get("memory")
        if folder is None:
            return 0
        name = "memory.events" if self.support.version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in (folder / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def memory_limit_hits(self) -> int:
        """v1 ``memory.failcnt``: allocations refused at the limit (an OOM may follow or not)."""
        folder = self.dirs.get("memory")
        if folder is None or self.support.version == 2:
            return 0
        with contextlib.suppress(OSError, ValueError):
            return int((folder / "memory.failcnt").read_text())
        return 0

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the groups, repeatedly, until they are empty (forks race us)."""
        folder = self.dirs.get("pids") or next(iter(self.dirs.values()), None)
        if folder is not None and self.support.version == 2 and (folder / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (folder / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the group folders (a group with processes cannot be removed)."""
        self.kill_all()
        for folder in set(self.dirs.values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs.clear()
