"""Trusted set-up inside the process sandbox, then ``exec`` of a code bundle's entry point (stdlib only).

Bound read-only into the sandbox next to ``evaluator_child.py`` and started as a plain script
(``python3 -I``), like the evaluator's stage 1 and for the same reasons: the parent must move the
process tree into its cgroups *before* participant code runs (so a fork bomb cannot escape them), and
as root bwrap cannot make the user namespace itself (see ``sandbox.py``), so this drops to uid 65534
and enters a namespace of its own. The privilege and rlimit helpers are the evaluator child's own.

Protocol (``evaluator_child``'s framing, on fds 0 and 1): this sends ``hello``, the parent answers
``init`` (limits, uid drop, whether the memory cgroup is in force); then fd 0 becomes ``/dev/null``,
fd 1 the capture pipe given as ``argv[1]``, and the command in ``argv[2:]`` replaces this process.
"""

from __future__ import annotations

import math
import os
import resource
import sys


def main(argv: list[str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's folder out
    from evaluator_child import (  # type: ignore[import-not-found]
        UID_WIDE_PROCESS_ROOM,
        _own_user_namespace,
        _set_limit,
        read_message,
        write_message,
    )

    capture_fd, command = int(argv[1]), argv[2:]
    write_message(1, {"op": "hello", "ok": True, "pid": os.getpid()})
    init = read_message(0)
    if init is None:
        os._exit(0)
    limits, notes = init["limits"], []
    drop = init.get("drop_to")
    if drop is not None:
        os.setgroups([])
        os.setgid(int(drop[1]))
        os.setuid(int(drop[0]))
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        if not init.get("in_user_namespace"):
            # Large while the namespace is made: that value caps the uid across all sandboxes.
            _set_limit(resource.RLIMIT_NPROC, UID_WIDE_PROCESS_ROOM, notes, "RLIMIT_NPROC")
            _own_user_namespace(uid, gid, notes)
        _set_limit(resource.RLIMIT_NPROC, limits["max_processes"], notes, "RLIMIT_NPROC")
    if limits.get("rlimit_as", True) and not init.get("memory_cgroup"):
        _set_limit(resource.RLIMIT_AS, limits["memory_bytes"], notes, "AS")
    _set_limit(resource.RLIMIT_FSIZE, limits["max_file_bytes"], notes, "RLIMIT_FSIZE")
    _set_limit(resource.RLIMIT_NOFILE, limits["max_open_files"], notes, "RLIMIT_NOFILE")
    _set_limit(resource.RLIMIT_CORE, 0, notes, "RLIMIT_CORE")
    cpu = math.ceil(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL: Docker's ulimit cpu
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(capture_fd, 1)
    for fd in (devnull, capture_fd):
        os.close(fd)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"could not start {command[0]}: {exc.strerror}\n".encode())
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv)
