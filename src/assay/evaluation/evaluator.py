"""The worker's side of one warm evaluator: a sandboxed subprocess that has imported one script.

One ``WarmEvaluator`` owns one process tree. It starts it (bwrap or plain), moves it into its cgroups,
sends the ``init`` message, waits for the script to be imported and warmed up, then serves requests
one at a time. While a request runs, one loop (``_exchange``) multiplexes the protocol pipe and the
two capture pipes, and enforces the wall-clock and CPU budgets of that request: the child cannot
block the worker, flood its memory, or outlive a limit. Any failure that leaves the process in an
unknown state kills the whole tree; the pool then starts a fresh one for the next job.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cgroups import EvaluatorCgroup, detect_cgroups
from .limits import EvaluationLimits, cpu_message, memory_message, timeout_message
from .sandbox import (
    CHILD_PATH,
    COMPUTE_DIR,
    INPUT_DIR,
    OUTPUT_DIR,
    SANDBOX_GID,
    SANDBOX_UID,
    SUBMISSION_DIR,
    BindPlan,
    SandboxReport,
    base_command,
    python_paths,
)
from .scripts import PreparedScript

log = logging.getLogger("assay.evaluation")

CHILD_SOURCE = Path(__file__).with_name("evaluator_child.py")
MAX_MESSAGE_BYTES = 256 * 1024**2
CPU_CHECK_SECONDS = 0.5
_CRASH_SIGNALS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating-point exception",
    signal.SIGABRT: "aborted",
}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything that makes two warm evaluators interchangeable."""

    key: str
    phase: str
    limits: EvaluationLimits
    script: PreparedScript
    annotation: Path | None

    @property
    def ident(self) -> tuple:
        return (self.key, self.phase, self.limits, self.script.sha256, self.script.python, str(self.annotation))


@dataclass
class CallResult:
    """One request's reply, or why there is none. ``died``: the evaluator is gone and must be replaced."""

    ok: bool
    output: Any = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    error_kind: str | None = None
    died: bool = False
    extra: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0  # CPU time the evaluator's processes used for this request


class OutputCapture:
    """Keeps the first ``limit`` bytes of a stream and counts the rest, so 1 GB of prints costs nothing."""

    def __init__(self, limit: int, prefix: bytes = b"") -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0
        if prefix:
            self.feed(prefix)

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[truncated {self.dropped} bytes: output is capped at {self.limit} bytes per evaluation]\n"
        return text


def _tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and all its descendants, from /proc (used when there is no cgroup)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    total = 0
    for pid, ticks in times.items():
        p = pid
        for _ in range(64):
            if p == root:
                total += ticks
                break
            p = parents.get(p, 0)
            if p <= 1:
                break
    return total / _CLK_TCK


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


# bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires when the *thread* that started the
# process exits, not the process. Evaluators are started from threads that come and go (chunked
# evaluation, the worker's own threads, Dask task threads), so every Popen happens in this one
# long-lived thread: the sandboxes then die with the worker process, and only with it.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-evaluator-spawner")


def _popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
    return _spawner.submit(subprocess.Popen, *args, **kwargs).result()


def _running(pid: int) -> bool:
    """Whether ``pid`` still exists and is not a zombie (zombies hold no resources but a pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 : raw.rfind(b")") + 3] != b"Z"


def _grow_pipe(fd: int) -> None:
    """1 MiB pipe buffers: fewer wake-ups when a script prints a lot (best effort; Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1024 * 1024)


def _encode(message: dict) -> bytes:
    body = json.dumps(message, allow_nan=True, default=str).encode()
    return struct.pack(">I", len(body)) + body


class WarmEvaluator:
    """One sandboxed evaluator process for one spec; not thread-safe (the pool hands it to one caller)."""

    def __init__(
        self, spec: EvaluatorSpec, sandbox: SandboxReport, run_root: Path, *, use_cgroups: bool = True
    ) -> None:
        self.spec = spec
        self.use_cgroups = use_cgroups
        self.sandbox = sandbox
        self.limits = spec.limits
        self.rundir = run_root / uuid.uuid4().hex[:16]
        self.inbox = self.rundir / "inbox"
        self.outdir = self.rundir / "output"
        self.proc: subprocess.Popen | None = None
        self.cgroup: EvaluatorCgroup | None = None
        self.capabilities: dict[str, bool] = {}
        self.description = sandbox.describe()
        self.served = 0
        self.closed = False
        self._cap_r: int | None = None
        self._pending_out = b""
        self._pending_err = b""
        self._oom_base = 0
        self._seq = 0
        self._close_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self.closed and self.proc is not None and self.proc.poll() is None

    def start(self) -> CallResult:
        """Start the process, import the script and run its warm_up(); ``ok`` False if any step failed."""
        try:
            self._spawn()
        except OSError as exc:
            self.close()
            return CallResult(False, error=f"the evaluator could not start: {exc}", error_kind="setup", died=True)
        hello = self._exchange(None, wall_seconds=self.limits.wall_seconds, where=" while starting")
        if not hello.ok:
            if hello.error_kind == "crash":
                # bwrap (or the interpreter) failed before any host code ran: a machine problem.
                hello.error_kind = "setup"
                hello.error = f"the sandbox could not start: {_first_line(hello.stderr) or hello.error}"
            return hello
        if self.cgroup is not None and self.proc is not None:
            for pid in _descendants(self.proc.pid):
                self.cgroup.add(pid)
            self._oom_base = self.cgroup.oom_kills()
        ready = self._exchange(self._init_message(), wall_seconds=self.limits.wall_seconds, where=" during warm-up")
        if not ready.ok:
            self.close()
            ready.died = True
            return ready
        self.capabilities = ready.extra.get("capabilities", {})
        self._describe(ready.extra)
        # Keep warm-up prints: they are shown with the first evaluation's output.
        self._pending_out = ready.stdout.encode()
        self._pending_err = ready.stderr.encode()
        return ready

    def _describe(self, ready: dict) -> None:
        parts = [self.sandbox.describe(with_cgroups=False)]
        if self.cgroup is not None and self.cgroup.applied:
            version = self.cgroup.support.version
            parts.append(f"cgroup v{version}: " + ", ".join(self.cgroup.applied))
        else:
            parts.append("no cgroup" + ("" if self.use_cgroups else " (disabled)"))
        if ready.get("applied"):
            parts.append("rlimits: " + ", ".join(ready["applied"]))
        if ready.get("notes"):
            parts.append("notes: " + "; ".join(ready["notes"]))
        self.description = " | ".join(parts)

    def _spawn(self) -> None:
        self.inbox.mkdir(parents=True)
        self.outdir.mkdir()
        os.chmod(self.rundir, 0o700)
        os.chmod(self.inbox, 0o755)
        support = detect_cgroups()
        if support.usable and self.use_cgroups:
            # Memory covers the tmpfs /tmp too: its pages are charged to the group that writes them.
            self.cgroup = EvaluatorCgroup(
                support, self.limits.memory_bytes + self.limits.tmp_bytes, self.limits.max_processes + 4
            )
            if not self.cgroup.dirs:
                self.cgroup = None
        cap_r, cap_w = os.pipe()
        self._cap_r = cap_r
        if self.sandbox.usable:
            cmd, env, cwd = self._bwrap_command(cap_w)
        else:
            cmd, env, cwd = self._plain_command(cap_w)
        try:
            self.proc = _popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(cap_w,),
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(cap_w)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        for fd in (cap_r, self.proc.stdout.fileno(), self.proc.stderr.fileno()):
            _grow_pipe(fd)
        os.set_blocking(self.proc.stdin.fileno(), False)

    def _bwrap_command(self, cap_w: int) -> tuple[list[str], dict[str, str], str]:
        assert self.sandbox.bwrap is not None
        privileged = self.sandbox.privileged
        if privileged:
            os.chown(self.outdir, SANDBOX_UID, SANDBOX_GID)
        etc = self.rundir / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:{SANDBOX_UID}:{SANDBOX_GID}:nobody:/tmp:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text(f"root:x:0:\nnogroup:x:{SANDBOX_GID}:\n")
        for f in ("passwd", "group"):
            os.chmod(etc / f, 0o644)
        cmd = base_command(
            self.sandbox.bwrap,
            privileged=privileged,
            disable_userns=self.sandbox.disable_userns,
            tmp_bytes=self.limits.tmp_bytes,
        )
        plan = BindPlan()
        plan.ro(etc / "passwd", "/etc/passwd")
        plan.ro(etc / "group", "/etc/group")
        for path in python_paths(self.spec.script.python):
            plan.ro(path)
        for path in self.spec.script.mounts:  # the script's environment (venvs, wheel folder), read-only
            plan.ro(os.path.realpath(path))
        plan.ro(self.spec.script.compute_dir, COMPUTE_DIR)
        annotation = self.spec.annotation
        if annotation is not None:
            plan.ro(self._readable_copy(annotation, self.rundir / "annotation"), f"{INPUT_DIR}/{annotation.name}")
        plan.ro(self.inbox, SUBMISSION_DIR)
        plan.rw(self.outdir, OUTPUT_DIR)
        plan.ro(CHILD_SOURCE, CHILD_PATH)
        cmd += plan.args
        cmd += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
        for key, value in self._child_env(home="/tmp", tmp="/tmp", output=OUTPUT_DIR, script=self.spec.script).items():
            cmd += ["--setenv", key, value]
        python = self.spec.script.python
        cmd += ["--", python, "-I", CHILD_PATH, "stage1", str(cap_w)]
        return cmd, {"PATH": "/usr/bin:/bin"}, "/"

    def _plain_command(self, cap_w: int) -> tuple[list[str], dict[str, str], str]:
        tmp = self.rundir / "tmp"
        tmp.mkdir()
        env = self._child_env(home=str(self.outdir), tmp=str(tmp), output=str(self.outdir), script=self.spec.script)
        cmd = [self.spec.script.python, "-I", str(CHILD_SOURCE), "stage1", str(cap_w)]
        return cmd, env, str(self.outdir)

    @staticmethod
    def _child_env(*, home: str, tmp: str, output: str, script: PreparedScript) -> dict[str, str]:
        """The child's whole environment: nothing inherited from the worker (no token, no settings).

        The script's environment adds its venv to PATH and pip's offline settings (``script.environ``).
        """
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            **dict(script.environ),
            "HOME": home,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # glibc reserves 64 MiB of address space per thread arena; RLIMIT_AS would count them.
            "MALLOC_ARENA_MAX": "2",
            "ASSAY_OUTPUT_DIR": output,
        }

    def _readable_copy(self, source: Path, folder: Path) -> Path:
        """``source`` itself when the sandbox user can read it; otherwise a 0644 copy in ``folder``."""
        if not self.sandbox.privileged or os.stat(source).st_mode & 0o004:
            return source
        folder.mkdir(exist_ok=True)
        target = folder / source.name
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
        return target

    def _init_message(self) -> dict:
        sandboxed = self.sandbox.usable
        if sandboxed:
            compute = COMPUTE_DIR
            annotation = f"{INPUT_DIR}/{self.spec.annotation.name}" if self.spec.annotation else None
        else:
            compute = str(self.spec.script.compute_dir)
            annotation = str(self.spec.annotation) if self.spec.annotation else None
        return {
            "op": "init",
            "compute_dir": compute,
            "package": self.spec.script.package,
            "annotation": annotation,
            "phase": self.spec.phase,
            "limits": self.limits.for_child(),
            "drop_to": [SANDBOX_UID, SANDBOX_GID] if sandboxed and self.sandbox.privileged else None,
            "in_user_namespace": sandboxed and not self.sandbox.privileged,
        }

    def stage_file(self, source: Path, name: str | None = None) -> str:
        """Make ``source`` visible to the running child; returns the path the child should open.

        The sandbox's binds are fixed when it starts, so each submission is hard-linked (or copied,
        when it is on another file system or unreadable by the sandbox user) into the bound inbox.
        """
        name = name or source.name
        if not self.sandbox.usable:
            return str(source)
        target = self.inbox / name
        if target.exists():
            target.unlink()
        readable = not self.sandbox.privileged or os.stat(source).st_mode & 0o004
        try:
            if not readable:
                raise OSError("needs a readable copy")
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
            os.chmod(target, 0o644)
        return f"{SUBMISSION_DIR}/{name}"

    def clear_inbox(self) -> None:
        for folder in (self.inbox, self.outdir):
            if not folder.exists():
                continue
            for entry in folder.iterdir():
                with contextlib.suppress(OSError):
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()

    def close(self, graceful: bool = False) -> None:
        """Stop the process tree (politely first when ``graceful``) and remove its folders and cgroup."""
        with self._close_lock:  # the pool's close() may race a busy caller's own clean-up
            if self.closed:
                return
            self.closed = True
        proc = self.proc
        if proc is not None and graceful and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(proc.stdin.fileno(), True)
                proc.stdin.write(_encode({"op": "exit"}))
                proc.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        self._kill_tree()
        for stream in (proc.stdin, proc.stdout, proc.stderr) if proc is not None else ():
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        if self._cap_r is not None:
            with contextlib.suppress(OSError):
                os.close(self._cap_r)
            self._cap_r = None
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.rundir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL its processes from another thread (a job that ended): the call in progress sees the
        evaluator die and returns a failure, and the pool discards it as any dead evaluator."""
        if not self.closed:
            self._kill_tree()

    def _kill_tree(self) -> None:
        """SIGKILL every process of this evaluator and wait until they are gone.

        With a cgroup that is exact. Without one, the tree is walked through /proc (the script may have
        started a new session, so the process group is not enough), and killing the outer bwrap
        ends the sandbox's pid namespace, which takes every process left in it along.
        """
        proc = self.proc
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if proc is None:
            return
        tree = _descendants(proc.pid) if proc.poll() is None else []
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while tree and time.monotonic() < deadline:
            tree = [pid for pid in tree if _running(pid)]
            if tree:
                time.sleep(0.02)

    # --- requests ------------------------------------------------------------------------------

    def call(self, request: dict, *, measure_cpu: bool = False) -> CallResult:
        """Send one request and wait for its reply within this evaluator's limits.

        ``measure_cpu`` fills ``cpu_seconds`` (one more read of the cgroup, or a /proc walk without one).
        """
        if not self.alive:
            return CallResult(False, error="the evaluator is not running", error_kind="crash", died=True)
        self._seq += 1
        request = {**request, "id": self._seq}
        result = self._exchange(request, wall_seconds=self.limits.wall_seconds, where="", measure_cpu=measure_cpu)
        self.served += 1
        return result

    def _cpu_seconds(self) -> float:
        if self.cgroup is not None:
            value = self.cgroup.cpu_seconds()
            if value is not None:
                return value
        if self.proc is None:
            return 0.0
        return _tree_cpu_seconds(self.proc.pid)

    def _exchange(
        self, request: dict | None, *, wall_seconds: float, where: str, measure_cpu: bool = False
    ) -> CallResult:
        """Write ``request`` (if any), read one reply, capture output, enforce wall and CPU time."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        limit = self.limits.max_output_bytes
        out = OutputCapture(limit, self._pending_out)
        err = OutputCapture(limit, self._pending_err)
        self._pending_out = self._pending_err = b""
        self._discard_stale()
        send = _encode(request) if request is not None else b""
        stdin_fd, proto_fd, err_fd = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
        cap_fd = self._cap_r
        routes = {proto_fd: None, cap_fd: out, err_fd: err}
        open_fds = set(routes)
        reply = bytearray()
        started = time.monotonic()
        deadline = started + wall_seconds
        cpu_start = self._cpu_seconds()
        next_cpu = started + CPU_CHECK_SECONDS
        message: dict | None = None
        failure: tuple[str, str] | None = None
        while message is None and failure is None:
            now = time.monotonic()
            if now >= deadline:
                failure = ("timeout", timeout_message(self.limits, where))
                break
            if now >= next_cpu:
                next_cpu = now + CPU_CHECK_SECONDS
                if self._cpu_seconds() - cpu_start > self.limits.cpu_seconds:
                    failure = ("timeout", cpu_message(self.limits, where))
                    break
            if proto_fd not in open_fds:
                break  # the child closed its end: it is gone
            wlist = [stdin_fd] if send else []
            try:
                readable, writable, _ = select.select(list(open_fds), wlist, [], min(0.25, deadline - now))
            except InterruptedError:
                continue
            if writable:
                try:
                    written = os.write(stdin_fd, send[: 1024 * 1024])
                    send = send[written:]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, OSError):
                    send = b""
            for fd in readable:
                try:
                    data = os.read(fd, 1024 * 1024)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    open_fds.discard(fd)
                    continue
                sink = routes[fd]
                if sink is None:
                    reply += data
                    message, error = _parse(reply)
                    if error:
                        failure = ("crash", error)
                else:
                    sink.feed(data)
        if message is not None:
            self._drain(out, err)
            result = self._reply(message, out, err)
            if measure_cpu:
                result.cpu_seconds = max(0.0, self._cpu_seconds() - cpu_start)
            return result
        if failure is not None:
            self._kill_tree()
            self._drain(out, err)
            kind, text = failure
            if kind == "timeout" and self._oom_happened():
                kind, text = "memory", memory_message(self.limits, where)
            result = CallResult(False, stdout=out.text(), stderr=err.text(), error=text, error_kind=kind, died=True)
            self.close()
            return result
        # The protocol pipe closed: the process died (or closed it). Find out how.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self._kill_tree()
        self._drain(out, err)
        kind, text = self._death_reason(where)
        result = CallResult(False, stdout=out.text(), stderr=err.text(), error=text, error_kind=kind, died=True)
        self.close()
        return result

    def _reply(self, message: dict, out: OutputCapture, err: OutputCapture) -> CallResult:
        ok = bool(message.get("ok"))
        result = CallResult(
            ok,
            output=message.get("output"),
            stdout=out.text(),
            stderr=err.text(),
            error=None if ok else message.get("error", "the evaluator reported an unknown error"),
            error_kind=None if ok else message.get("error_kind", "script_error"),
            extra=message,
        )
        return result

    def _oom_happened(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_kills() > self._oom_base

    def _death_reason(self, where: str) -> tuple[str, str]:
        rc = self.proc.returncode if self.proc is not None else None
        if self._oom_happened():
            return "memory", memory_message(self.limits, where)
        sig = None
        if rc is not None and rc < 0:
            sig = -rc
        elif rc is not None and self.sandbox.usable and rc > 128:
            sig = rc - 128  # bwrap exits with 128 + the signal that killed the sandboxed process
        if sig == signal.SIGXCPU:
            return "timeout", cpu_message(self.limits, where)
        if sig in _CRASH_SIGNALS:
            name = signal.Signals(sig).name
            return "crash", f"the evaluation process crashed{where} ({name}: {_CRASH_SIGNALS[sig]})"
        if sig == signal.SIGKILL:
            return "crash", f"the evaluation process was killed{where} (SIGKILL; possibly out of memory)"
        if sig is not None:
            return "crash", f"the evaluation process was killed{where} by signal {sig}"
        return (
            "crash",
            f"the evaluation process exited unexpectedly{where} with exit code {rc} "
            "(did the script call os._exit() or close the evaluator's pipes?)",
        )

    def _discard_stale(self) -> None:
        """Drop what a script's leftover background processes printed between two requests."""
        sink = OutputCapture(0)
        self._drain(sink, sink, block=False)

    def _drain(self, out: OutputCapture, err: OutputCapture, block: bool = True) -> None:
        """Read what is already in the capture pipes (everything the child wrote before replying)."""
        proc = self.proc
        if proc is None or self._cap_r is None or proc.stderr is None:
            return
        fds = {self._cap_r: out, proc.stderr.fileno(): err}
        deadline = time.monotonic() + (0.5 if block else 0.0)
        while fds:
            try:
                readable, _, _ = select.select(list(fds), [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                if time.monotonic() >= deadline or proc.poll() is None:
                    return
                time.sleep(0.01)
                continue
            for fd in readable:
                try:
                    data = os.read(fd, 1024 * 1024)
                except OSError:
                    data = b""
                if not data:
                    fds.pop(fd)
                else:
                    fds[fd].feed(data)


def _parse(buffer: bytearray) -> tuple[dict | None, str | None]:
    if len(buffer) < 4:
        return None, None
    (size,) = struct.unpack(">I", bytes(buffer[:4]))
    if size > MAX_MESSAGE_BYTES:
        return None, f"the evaluator sent a {size}-byte message, over the protocol limit"
    if len(buffer) < 4 + size:
        return None, None
    try:
        message = json.loads(bytes(buffer[4 : 4 + size]))
    except ValueError as exc:
        return None, f"the evaluator sent a malformed message: {exc}"
    if not isinstance(message, dict):
        return None, "the evaluator sent a malformed message"
    return message, None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
