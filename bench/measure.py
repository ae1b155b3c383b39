"""What the OS says a benchmark cost, so figures survive a busy machine.

Wall-clock latency on a shared 2-core VM mostly measures the neighbours; CPU time charged to the
server and worker processes does not. ``cpu_seconds(pid)`` is the CPU (user + system) of a process
tree — the process, its threads, its live descendants and the children it already reaped — read
with psutil when installed, else from ``/proc/<pid>/stat``. ``machine()`` records what ran the
benchmark (CPU model, cores, load average) for every results file.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

try:
    import psutil
except ImportError:  # the /proc reader below does the same on Linux
    psutil = None

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """The machine and how busy it was when the run started."""
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "memory_mb": mem, "python": platform.python_version(),
            "os": platform.platform(), "load_average_at_start": load_average()}  # fmt: skip


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _proc_tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(_proc_stat(int(stat.parent.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``, its threads and descendants (reaped ones through their parent's
    children times); 0.0 once the process is gone."""
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:  # ended between listing and reading: its parent counts it once reaped
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total
    ticks = 0
    for p in _proc_tree(pid):
        try:
            f = _proc_stat(p)
        except OSError:
            continue
        ticks += sum(int(x) for x in f[11:15])  # utime, stime, cutime, cstime
    return ticks / TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its threads, without any child process; 0.0 once it is gone."""
    try:
        f = _proc_stat(pid)
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICKS


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU of one thread (``threading.Thread.native_id``) of ``pid``; 0.0 once it is gone."""
    try:
        f = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICKS


class CpuMeter:
    """CPU used between ``start()`` and ``stop()``, by the named parts ``read()`` returns (cumulative
    CPU seconds each, e.g. :meth:`platform_harness.Platform.cpu`); ``total`` is their sum."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._before = self.read()
        self.load_before = load_average()
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        after = self.read()
        self.seconds = time.monotonic() - self._t0
        self.load_after = load_average()
        self.used = {name: after[name] - self._before.get(name, 0.0) for name in after}
        return self.used

    def per_item_ms(self, items: int) -> dict:
        """CPU milliseconds per submission/request: each part, their total, and the load average around it."""
        out = {name: round(1000 * used / items, 2) for name, used in self.used.items()}
        out["total"] = round(1000 * sum(self.used.values()) / items, 2)
        out["load_average"] = [self.load_before, self.load_after]
        return out

    def percent_of_a_core(self) -> dict:
        out = {name: round(100 * used / self.seconds, 2) for name, used in self.used.items()}
        out["total"] = round(100 * sum(self.used.values()) / self.seconds, 2)
        out["seconds"] = round(self.seconds, 1)
        out["load_average"] = [self.load_before, self.load_after]
        return out
