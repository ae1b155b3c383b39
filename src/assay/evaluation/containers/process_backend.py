"""Run a participant's **code bundle** (a folder with ``run.sh`` or ``main.py``) in the bubblewrap sandbox.

The third runner behind :class:`~.contract.ContainerBackend`, for machines without Docker: the same
``/input`` → ``/output`` contract as an image, enforced with the evaluator's own isolation
(:mod:`assay.evaluation.sandbox`, :mod:`~assay.evaluation.cgroups`, the rlimits of its child): no network,
own user/pid/ipc/uts/mount namespaces, uid 65534, the host's system folders read-only (so ``/bin/sh`` and
the system ``python3`` exist), the code read-only at ``/code`` (the working folder), the inputs read-only,
``/output`` writable, a sized private ``/tmp``, only ``run.env`` (+ ``PATH``, ``HOME=/tmp``) in the
environment, rlimits and a cgroup (memory, pids, CPU accounting), and the wall clock, after which the
whole process tree is killed. ``ContainerRun.image`` is the code folder's host path.

Never runs unsandboxed: without a working bwrap, constructing the backend raises
:class:`~.contract.ContainerUnavailable`.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cgroups import EvaluatorCgroup, detect_cgroups
from ..evaluator import CHILD_SOURCE, _descendants, _encode, _first_line, _grow_pipe, _parse, _popen
from ..handles import STOPPED, RunHandle
from ..sandbox import SANDBOX_GID, SANDBOX_UID, BindPlan, SandboxReport, base_command, detect_sandbox
from .contract import OUTPUT_PATH, ContainerOutcome, ContainerRun, ContainerUnavailable, UnsafeRun

#: Where the code is mounted (read-only) and run from.
CODE_PATH = "/code"
#: Entry points looked for at the bundle's root, first found wins, and how each is started.
#: ``-E -s`` rather than ``-I``: isolated mode leaves the script's folder off ``sys.path``, so a bundle
#: could not import its own modules; the environment is clean and ``HOME`` empty anyway.
ENTRY_POINTS: dict[str, list[str]] = {"run.sh": ["/bin/sh", "run.sh"], "main.py": ["python3", "-E", "-s", "main.py"]}
LAUNCHER_SOURCE = Path(__file__).with_name("process_launcher.py")
LAUNCHER_DIR = "/assay"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
#: How long bwrap may take to start the launcher before the run is a set-up failure (within the wall clock).
START_SECONDS = 30.0


def entry_point(folder: Path) -> list[str] | None:
    """The command that starts the bundle in ``folder``, or None when it has none of :data:`ENTRY_POINTS`."""
    for name, command in ENTRY_POINTS.items():
        path = folder / name
        if path.is_file() and not path.is_symlink():
            return command
    return None


def missing_entry_point() -> str:
    names = " or ".join(ENTRY_POINTS)
    return f"the code bundle has no entry point: put {names} at the root of the zip (zip the folder's contents)"


def system_python() -> str | None:
    """The host's ``python3`` that the sandbox can see (under ``/usr`` or ``/bin``), or None."""
    return shutil.which("python3", path=SANDBOX_PATH)


class _Tail:
    """Keeps the last ``limit`` bytes of a stream (a container's log: errors are at its end)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.limit + 64 * 1024:  # trim now and then, not at every chunk
            extra = len(self.data) - self.limit
            del self.data[:extra]
            self.dropped += extra

    def text(self) -> str:
        extra = max(0, len(self.data) - self.limit)
        cut = self.dropped + extra
        body = bytes(self.data[extra:]).decode("utf-8", errors="replace")
        return f"[first {cut} bytes cut: logs are capped at {self.limit} bytes]\n{body}" if cut else body


@dataclass(eq=False)  # identity: kept in a set while it runs
class _Running:
    proc: subprocess.Popen
    cgroup: EvaluatorCgroup | None


class ProcessBackend:
    """Code bundles under bubblewrap, one process tree per run; no Docker needed.

    ``workdir`` holds each run's private files (deleted afterwards); ``use_cgroups=False`` leaves the
    limits to rlimits alone. Raises :class:`ContainerUnavailable` when bwrap cannot sandbox here.
    """

    name = "process"

    def __init__(
        self, workdir: Path | None = None, *, sandbox: SandboxReport | None = None, use_cgroups: bool = True
    ) -> None:
        self.sandbox = sandbox or detect_sandbox()
        if not self.sandbox.usable or self.sandbox.bwrap is None:
            raise ContainerUnavailable(
                f"code bundles run only in the bubblewrap sandbox, and {self.sandbox.reason}; "
                "install bubblewrap (apt-get install bubblewrap)"
            )
        self.python = system_python()
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.gettempdir()) / "assay-process-runs"
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.use_cgroups = use_cgroups
        self._running: set[_Running] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        cgroups = detect_cgroups()
        limits = cgroups.describe() if cgroups.usable and self.use_cgroups else "no cgroup: rlimits only"
        return (
            f"process sandbox ({self.sandbox.describe(with_cgroups=False)}; no network; code read-only at "
            f"{CODE_PATH}; system python3 {self.python or 'missing'}; {limits})"
        )

    def run_together(self, runs: Sequence[ContainerRun], handle: RunHandle | None = None) -> list[ContainerOutcome]:
        if not runs:
            return []
        raise ContainerUnavailable(
            "agent ↔ environment runs need Docker or Kubernetes: the process sandbox runs one code bundle alone"
        )

    def stop_all(self) -> None:
        """Kill every run in progress (the worker is stopping); each then ends as killed and is cleaned up."""
        with self._lock:
            running = list(self._running)
        for item in running:
            _kill_tree(item)

    # -- one run -------------------------------------------------------------------------------------
    def run(self, run: ContainerRun, handle: RunHandle | None = None) -> ContainerOutcome:
        """Run one code bundle; ``handle.stop()`` kills its process tree alone (the others run on)."""
        if run.network != "none":
            raise UnsafeRun("a code bundle runs with network 'none'; agent ↔ environment runs need Docker")
        if handle is not None and handle.stopped:
            return _failed(STOPPED)
        code = Path(run.image)
        if not code.is_absolute() or not code.is_dir():
            return _failed(f"the code bundle folder {run.image} does not exist on this worker")
        command = list(run.command) if run.command is not None else entry_point(code)
        if command is None:
            return _failed(missing_entry_point())
        if command[0] == "python3" and self.python is None:
            return _failed("this worker has no system python3 (under /usr) to run main.py; use run.sh")
        rundir = Path(tempfile.mkdtemp(prefix=f"{run.name}-", dir=self.workdir))
        try:
            return self._run(run, code, command, rundir, handle)
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    def _run(
        self, run: ContainerRun, code: Path, command: list[str], rundir: Path, handle: RunHandle | None
    ) -> ContainerOutcome:
        limits = run.limits
        cgroup = self._cgroup(run)
        cap_r, cap_w = os.pipe()
        started = time.monotonic()
        try:
            cmd = self._command(run, code, command, rundir, cap_w)
            proc = _popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(cap_w,),
                env={"PATH": "/usr/bin:/bin"}, cwd="/", start_new_session=True, close_fds=True,
            )  # fmt: skip
        except BaseException:
            os.close(cap_r)
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            os.close(cap_w)
        item = _Running(proc, cgroup)
        with self._lock:
            self._running.add(item)
        detach = handle.attach(lambda: _kill_tree(item)) if handle is not None else (lambda: None)
        out, err = _Tail(limits.max_output_bytes), _Tail(limits.max_output_bytes)
        try:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            for fd in (cap_r, proc.stderr.fileno()):
                _grow_pipe(fd)
            deadline = started + limits.wall_seconds
            oom_base = 0
            if not self._handshake(proc, err, min(deadline, started + START_SECONDS)):
                if handle is not None and handle.stopped:  # killed while the sandbox started
                    return _failed(STOPPED, duration=time.monotonic() - started)
                why = _first_line(err.text()) or "bwrap did not start the launcher"
                return _failed(f"the sandbox could not start: {why}", duration=time.monotonic() - started)
            if cgroup is not None:
                for pid in _descendants(proc.pid):
                    cgroup.add(pid)
                oom_base = cgroup.oom_kills()
            init = {
                "op": "init", "limits": limits.for_child(),
                "drop_to": [SANDBOX_UID, SANDBOX_GID] if self.sandbox.privileged else None,
                "in_user_namespace": not self.sandbox.privileged,
                "memory_cgroup": cgroup is not None and "memory" in cgroup.dirs,
            }  # fmt: skip
            with contextlib.suppress(OSError):
                proc.stdin.write(_encode(init))
                proc.stdin.close()
            timed_out = self._pump(proc, {cap_r: out, proc.stderr.fileno(): err}, deadline)
            if timed_out:
                _kill_tree(item)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            duration = time.monotonic() - started
            if handle is not None and handle.stopped:
                return _failed(STOPPED, duration=duration)
            oom = cgroup is not None and cgroup.oom_kills() > oom_base
            return ContainerOutcome(
                exit_code=_exit_code(proc.returncode), oom_killed=oom, timed_out=timed_out and not oom,
                stdout=out.text(), stderr=err.text(), duration=duration, image_digest=None,
            )  # fmt: skip
        finally:
            detach()
            with self._lock:
                self._running.discard(item)
            _kill_tree(item)  # whatever is left (the entry point's leftovers too; its namespace ends with it)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()  # type: ignore[union-attr]
            with contextlib.suppress(OSError):
                os.close(cap_r)
            if cgroup is not None:
                cgroup.remove()

    def _cgroup(self, run: ContainerRun) -> EvaluatorCgroup | None:
        """Memory (the tmpfs ``/tmp`` is charged to it too), pids (+ bwrap and the launcher) and CPU accounting."""
        support = detect_cgroups()
        if not (support.usable and self.use_cgroups):
            return None
        limits = run.limits
        cgroup = EvaluatorCgroup(support, limits.memory_bytes + limits.tmp_bytes, limits.max_processes + 4)
        if not cgroup.dirs:
            return None
        if support.version == 2 and "cpu" in cgroup.dirs:  # a CPU share where the cpu controller is delegated
            with contextlib.suppress(OSError):
                (cgroup.dirs["cpu"] / "cpu.max").write_text(f"{max(1000, int(run.cpus * 100000))} 100000")
        return cgroup

    def _command(self, run: ContainerRun, code: Path, command: list[str], rundir: Path, cap_w: int) -> list[str]:
        assert self.sandbox.bwrap is not None
        privileged = self.sandbox.privileged
        etc = rundir / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(f"nobody:x:{SANDBOX_UID}:{SANDBOX_GID}:nobody:/tmp:/usr/sbin/nologin\n")
        (etc / "group").write_text(f"nogroup:x:{SANDBOX_GID}:\n")
        for name in ("passwd", "group"):
            os.chmod(etc / name, 0o644)
        cmd = base_command(
            self.sandbox.bwrap, privileged=privileged, disable_userns=self.sandbox.disable_userns,
            tmp_bytes=run.limits.tmp_bytes,
        )  # fmt: skip
        plan = BindPlan()
        plan.ro(etc / "passwd", "/etc/passwd")
        plan.ro(etc / "group", "/etc/group")
        launcher_python = self.python
        if launcher_python is None:  # no system python: the worker's own base install (not its venv) starts it
            launcher_python = os.path.realpath(sys.executable)
            plan.ro(os.path.realpath(sys.base_prefix))
            plan.ro(os.path.dirname(os.path.dirname(launcher_python)))
        plan.ro(LAUNCHER_SOURCE, f"{LAUNCHER_DIR}/process_launcher.py")
        plan.ro(CHILD_SOURCE, f"{LAUNCHER_DIR}/evaluator_child.py")
        plan.ro(code.resolve(), CODE_PATH)
        for host, target in run.inputs.items():
            host = Path(host)
            if not host.is_absolute() or not host.exists():
                raise UnsafeRun(f"input {host} must be an existing absolute path")
            plan.ro(host.resolve(), target)
        if run.output_dir is not None:
            out = Path(run.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            if privileged:  # the launcher drops to 65534; the run's parent folder keeps others out
                os.chown(out, SANDBOX_UID, SANDBOX_GID)
            plan.rw(out.resolve(), OUTPUT_PATH)
        cmd += plan.args
        cmd += ["--remount-ro", "/", "--chdir", CODE_PATH, "--clearenv"]
        for key, value in {"PATH": SANDBOX_PATH, "HOME": "/tmp", **run.env}.items():
            cmd += ["--setenv", key, value]
        return [*cmd, "--", launcher_python, "-I", f"{LAUNCHER_DIR}/process_launcher.py", str(cap_w), *command]

    @staticmethod
    def _handshake(proc: subprocess.Popen, err: _Tail, deadline: float) -> bool:
        """Wait for the launcher's ``hello`` (bwrap's own errors go to stderr meanwhile)."""
        assert proc.stdout is not None and proc.stderr is not None
        proto, errfd = proc.stdout.fileno(), proc.stderr.fileno()
        open_fds = {proto, errfd}
        reply = bytearray()
        while time.monotonic() < deadline and proto in open_fds:
            readable, _, _ = select.select(list(open_fds), [], [], min(0.25, max(0.0, deadline - time.monotonic())))
            for fd in readable:
                data = os.read(fd, 65536)
                if not data:
                    open_fds.discard(fd)
                    continue
                if fd == errfd:
                    err.feed(data)
                    continue
                reply += data
                message, error = _parse(reply)
                if error:
                    return False
                if message is not None:
                    return message.get("op") == "hello"
            if not readable and proc.poll() is not None:
                return False
        return False

    @staticmethod
    def _pump(proc: subprocess.Popen, sinks: dict[int, _Tail], deadline: float) -> bool:
        """Capture stdout/stderr until the sandbox exits; True when the wall clock ran out first."""
        open_fds = set(sinks)
        exited_at: float | None = None
        while open_fds:
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 2.0:
                break  # the pipes' last holders are gone with the namespace; do not wait on strays
            readable, _, _ = select.select(list(open_fds), [], [], min(0.25, deadline - now))
            for fd in readable:
                try:
                    data = os.read(fd, 1024 * 1024)
                except OSError:
                    data = b""
                if data:
                    sinks[fd].feed(data)
                else:
                    open_fds.discard(fd)
        while proc.poll() is None:
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.02)
        return False


def _kill_tree(item: _Running) -> None:
    """SIGKILL the run's processes: the cgroup when there is one, else the tree found through /proc; ending
    bwrap ends the pid namespace, which takes whatever is left in it along."""
    proc = item.proc
    if item.cgroup is not None:
        item.cgroup.kill_all()
    if proc.poll() is None:
        for pid in _descendants(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _exit_code(returncode: int | None) -> int | None:
    """Docker's convention: 128 + the signal for a killed process (bwrap already reports its child so)."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


def _failed(error: str, *, duration: float = 0.0) -> ContainerOutcome:
    return ContainerOutcome(None, False, False, "", "", duration, None, error=error)
