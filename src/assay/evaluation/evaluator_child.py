"""The code that runs inside the sandbox and hosts one challenge's evaluation script (stdlib only).

This file is bound read-only into the sandbox and started as a plain script (``python -I``), so it must
not import anything from Assay: the rest of the package is not visible in there, and the evaluation
script must not be able to reach the worker's code or settings.

It runs in two stages, both in the same sandbox:

``stage1`` is trusted set-up. It greets the parent (which then moves the process tree into its cgroups),
reads the ``init`` message, drops to the unprivileged uid, creates a user namespace of its own (so
``RLIMIT_NPROC`` counts this sandbox's processes only, see ``_own_user_namespace``), sets the
resource limits and re-executes itself, which clears every capability the namespace granted.

``stage2`` imports the host's package, calls its optional ``warm_up()`` once, then serves requests
(``evaluate``, ``evaluate_chunk``, ``merge``) one at a time until its input closes. The host script's
own ``print``s go to fd 1 and 2, which are capture pipes read by the parent; the protocol uses
private duplicates of the original stdin/stdout, so nothing the script prints can corrupt it.

Wire format (both directions): a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import json
import math
import os
import resource
import signal
import struct
import sys
import time
import traceback

MAX_MESSAGE_BYTES = 256 * 1024**2
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
# Room left to the whole uid's processes across every sandbox (one user namespace each counts its own).
UID_WIDE_PROCESS_ROOM = 16384


class CpuTimeExceeded(BaseException):
    """Raised from the SIGXCPU handler; a BaseException so a host's ``except Exception`` cannot eat it."""


# --- framing -------------------------------------------------------------------------------------


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        data = os.read(fd, min(n, 1024 * 1024))
        if not data:
            return None
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def read_message(fd: int) -> dict | None:
    """The next message from the parent, or None when the parent has gone (end of input)."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes is over the limit")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body)


def write_message(fd: int, message: dict) -> None:
    body = json.dumps(message, allow_nan=True).encode()
    if len(body) > MAX_MESSAGE_BYTES:
        message = {
            "op": message.get("op", "result"),
            "ok": False,
            "error_kind": "bad_output",
            "error": f"the evaluation result is {len(body)} bytes of JSON, over the {MAX_MESSAGE_BYTES} limit",
        }
        body = json.dumps(message).encode()
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- stage 1: privileges and limits ---------------------------------------------------------------


def _own_user_namespace(uid: int, gid: int, notes: list[str]) -> bool:
    """Enter a fresh user namespace owned by the unprivileged uid.

    Why: Linux counts ``RLIMIT_NPROC`` per (user namespace, uid). Every sandbox runs as uid 65534, so
    without a namespace of its own one evaluator's fork bomb would use up the budget of all the others.
    In our own namespace the first check is against this namespace's count alone; the uid-wide count
    is only checked against the (large) limit in force when the namespace was created. Setting
    ``user.max_user_namespaces`` to 0 inside it stops the script from nesting further namespaces.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    # setuid() made the process non-dumpable, which makes /proc/self/* root-owned and unwritable.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if libc.unshare(CLONE_NEWUSER) != 0:
        notes.append(f"own user namespace unavailable ({os.strerror(ctypes.get_errno())})")
        return False
    for path, data in (
        ("/proc/self/uid_map", f"{uid} {uid} 1\n"),
        ("/proc/self/setgroups", "deny\n"),
        ("/proc/self/gid_map", f"{gid} {gid} 1\n"),
        ("/proc/sys/user/max_user_namespaces", "0\n"),
    ):
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            notes.append(f"could not write {path}: {exc.strerror}")
    return True


def _set_limit(which: int, value: int, notes: list[str], name: str) -> bool:
    """Lower a soft and hard rlimit; a limit above the inherited hard one is left at that hard one."""
    try:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
        return True
    except (ValueError, OSError) as exc:
        notes.append(f"{name} not set: {exc}")
        return False


def stage1(capture_fd: int) -> None:
    write_message(1, {"op": "hello", "ok": True, "pid": os.getpid()})
    init = read_message(0)
    if init is None:
        os._exit(0)
    notes: list[str] = []
    applied: list[str] = []
    limits = init["limits"]
    drop = init.get("drop_to")
    if drop is not None:
        os.setgroups([])
        os.setgid(int(drop[1]))
        os.setuid(int(drop[0]))
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        notes.append("RLIMIT_NPROC is not enforced for uid 0")
    else:
        if init.get("in_user_namespace"):
            scope = "per-sandbox"  # bwrap without privileges made one for us
        else:
            # Large while creating the namespace: that value caps the uid across all sandboxes.
            _set_limit(resource.RLIMIT_NPROC, UID_WIDE_PROCESS_ROOM, notes, "RLIMIT_NPROC")
            scope = "per-sandbox" if _own_user_namespace(uid, gid, notes) else "per-uid"
        if scope == "per-uid" and drop is None:
            # Sharing the worker's own uid: its threads would count against the script's budget.
            notes.append("RLIMIT_NPROC not set: no user namespace and the worker's own uid")
        elif _set_limit(resource.RLIMIT_NPROC, limits["max_processes"], notes, "RLIMIT_NPROC"):
            applied.append(f"NPROC={limits['max_processes']} ({scope})")
    if limits.get("rlimit_as", True) and _set_limit(resource.RLIMIT_AS, limits["memory_bytes"], notes, "AS"):
        applied.append(f"AS={limits['memory_bytes'] // 1024**2}MiB")
    if _set_limit(resource.RLIMIT_FSIZE, limits["max_file_bytes"], notes, "RLIMIT_FSIZE"):
        applied.append(f"FSIZE={limits['max_file_bytes'] // 1024**2}MiB")
    if _set_limit(resource.RLIMIT_NOFILE, limits["max_open_files"], notes, "RLIMIT_NOFILE"):
        applied.append(f"NOFILE={limits['max_open_files']}")
    _set_limit(resource.RLIMIT_CORE, 0, notes, "RLIMIT_CORE")
    # RLIMIT_CPU is set per request in stage 2, relative to the CPU time already used.
    applied.append("CPU (per evaluation)")
    init["applied"] = applied
    init["notes"] = notes
    os.set_inheritable(capture_fd, True)
    argv = [sys.executable, "-I", os.path.abspath(__file__), "stage2", str(capture_fd), json.dumps(init)]
    os.execv(sys.executable, argv)


# --- stage 2: the host's package -----------------------------------------------------------------


def _jsonable(value: object) -> object:
    """``json.dumps`` default: NumPy scalars and arrays are what real scripts return; nothing else."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__ == "numpy":
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_json(value: object, lenient_keys: tuple[str, ...] = ()) -> object:
    """A JSON round trip of what the script returned, so the parent gets exactly what JSON can carry.

    EvalAI writes ``submission_result`` and ``submission_metadata`` with ``default=str``; those keys keep
    that leniency, the rest (``result``, ``error``) must be real JSON.
    """
    if lenient_keys and isinstance(value, dict):
        value = {k: (json.loads(json.dumps(v, default=str)) if k in lenient_keys else v) for k, v in value.items()}
    return json.loads(json.dumps(value, default=_jsonable, allow_nan=True))


class Host:
    """The imported evaluation package and the state it keeps between submissions."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.limits = config["limits"]
        self.annotation = config.get("annotation")
        self.phase = config["phase"]
        self.module = None
        self.warm_state = None
        self.has_warm_up = False

    def load(self) -> dict:
        started = time.monotonic()
        sys.path.insert(0, self.config["compute_dir"])
        try:
            self.module = importlib.import_module(self.config["package"])
        except MemoryError:
            return self._fail("memory", self._memory_message("while importing the evaluation script"))
        except CpuTimeExceeded:
            return self._fail("timeout", self._cpu_message("while importing the evaluation script"))
        except BaseException as exc:  # noqa: BLE001 - anything the import raised is reported to the host
            traceback.print_exc()
            return self._fail("setup", f"importing the evaluation script failed: {_describe(exc)}")
        import_seconds = time.monotonic() - started
        if not callable(getattr(self.module, "evaluate", None)):
            return self._fail(
                "setup",
                "the evaluation script's __init__.py does not define evaluate() "
                "(EvalAI scripts expose it there, e.g. 'from .main import evaluate')",
            )
        warm_up = getattr(self.module, "warm_up", None)
        started = time.monotonic()
        if callable(warm_up):
            self.has_warm_up = True
            try:
                with _cpu_budget(self.limits["cpu_seconds"]), _only_in_main_process():
                    self.warm_state = warm_up(self.annotation, self.phase)
            except MemoryError:
                return self._fail("memory", self._memory_message("in warm_up()"))
            except CpuTimeExceeded:
                return self._fail("timeout", self._cpu_message("in warm_up()"))
            except BaseException as exc:  # noqa: BLE001
                traceback.print_exc()
                return self._fail("setup", f"warm_up() raised {_describe(exc)}")
        _flush()
        return {
            "op": "ready",
            "ok": True,
            "capabilities": {
                "warm_up": self.has_warm_up,
                "evaluate_chunk": callable(getattr(self.module, "evaluate_chunk", None)),
                "merge_chunks": callable(getattr(self.module, "merge_chunks", None)),
            },
            "import_seconds": import_seconds,
            "warm_up_seconds": time.monotonic() - started,
            "applied": self.config.get("applied", []),
            "notes": self.config.get("notes", []),
            "uid": os.getuid(),
        }

    def _memory_message(self, where: str = "") -> str:
        mib = self.limits["memory_bytes"] // 1024**2
        return f"evaluation ran out of memory{' ' + where if where else ''} (limit {mib} MiB)"

    def _cpu_message(self, where: str = "") -> str:
        return (
            f"evaluation exceeded the {_seconds(self.limits['cpu_seconds'])} CPU time limit"
            f"{' ' + where if where else ''}"
        )

    @staticmethod
    def _fail(kind: str, error: str) -> dict:
        _flush()
        return {"op": "result", "ok": False, "error_kind": kind, "error": error}

    def _kwargs(self, request: dict) -> dict:
        kwargs = {"submission_metadata": request.get("metadata") or {}}
        if self.has_warm_up:
            kwargs["warm_state"] = self.warm_state
        return kwargs

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        fn_name = {"evaluate": "evaluate", "evaluate_chunk": "evaluate_chunk", "merge": "merge_chunks"}.get(op)
        if fn_name is None:
            return self._fail("setup", f"unknown request {op!r}")
        fn = getattr(self.module, fn_name, None)
        if not callable(fn):
            return self._fail("setup", f"the evaluation script does not define {fn_name}()")
        kwargs = self._kwargs(request)
        try:
            with _cpu_budget(self.limits["cpu_seconds"]), _only_in_main_process():
                if op == "evaluate":
                    value = fn(self.annotation, request["submission"], self.phase, **kwargs)
                elif op == "evaluate_chunk":
                    value = fn(self.annotation, request["chunk"], self.phase, **kwargs)
                else:
                    value = fn(request["partials"], self.phase, **kwargs)
        except MemoryError:
            traceback.print_exc()
            return self._fail("memory", self._memory_message())
        except CpuTimeExceeded:
            return self._fail("timeout", self._cpu_message())
        except SystemExit as exc:
            return self._fail("script_error", f"{fn_name}() called sys.exit({exc.code!r})")
        except BaseException as exc:  # noqa: BLE001
            traceback.print_exc()
            return self._fail("script_error", f"{fn_name}() raised {_describe(exc)}")
        try:
            if op == "evaluate_chunk":
                payload = _to_json(value)
            else:
                payload = _to_json(value, ("submission_result", "submission_metadata"))
        except MemoryError:
            return self._fail("memory", self._memory_message("while encoding the result"))
        except (TypeError, ValueError, RecursionError) as exc:
            return self._fail("bad_output", f"{fn_name}() returned a value that is not JSON-serialisable: {exc}")
        _flush()
        return {"op": "result", "ok": True, "output": payload}


class _cpu_budget:
    """Allow ``seconds`` more CPU time than used so far: RLIMIT_CPU is per process, not per call.

    The soft limit raises SIGXCPU (turned into CpuTimeExceeded) so the warm process survives; the
    parent also measures CPU time of the whole sandbox and kills it if the script lifts this limit.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = usage.ru_utime + usage.ru_stime
        soft = int(math.ceil(used + self.seconds))
        try:
            _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        except (ValueError, OSError):
            pass

    def __exit__(self, *exc: object) -> None:
        try:
            _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        except (ValueError, OSError):
            pass


class _only_in_main_process:
    """A process the script forked must never return into this loop: it would answer requests too.

    (``multiprocessing`` children call ``os._exit``; a bare ``os.fork()`` without it would not.)
    """

    def __enter__(self) -> None:
        self.pid = os.getpid()

    def __exit__(self, *exc: object) -> None:
        if os.getpid() != self.pid:
            os._exit(0)


def _on_sigxcpu(signum: int, frame: object) -> None:
    raise CpuTimeExceeded()


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a script may have closed or replaced the stream
            pass


def stage2(capture_fd: int, config: dict) -> None:
    # Private, non-inheritable copies of the protocol pipes; fd 0 becomes /dev/null and fd 1 the
    # stdout capture pipe, so prints (also from C code and subprocesses) never reach the protocol.
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    os.dup2(capture_fd, 1)
    os.close(capture_fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")
    sys.stderr.reconfigure(line_buffering=True, errors="backslashreplace")
    sys.dont_write_bytecode = True
    faulthandler.enable(file=sys.stderr)
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead

    host = Host(config)
    ready = host.load()
    write_message(proto_out, ready)
    if not ready.get("ok"):
        os._exit(0)
    while True:
        request = read_message(proto_in)
        if request is None or request.get("op") == "exit":
            _flush()
            os._exit(0)
        response = host.handle(request)
        response["id"] = request.get("id")
        write_message(proto_out, response)


def main() -> None:
    stage = sys.argv[1]
    if stage == "stage1":
        stage1(int(sys.argv[2]))
    elif stage == "stage2":
        stage2(int(sys.argv[2]), json.loads(sys.argv[3]))
    else:
        raise SystemExit(f"unknown stage {stage!r}")


if __name__ == "__main__":
    main()
