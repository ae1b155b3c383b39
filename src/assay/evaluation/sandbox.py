"""Which isolation this machine offers, and the bubblewrap command line that applies it.

Two backends, chosen at run time (``detect_sandbox``):

``bwrap``
    bubblewrap namespaces: no network (only ``lo``), a private pid namespace (the worker and other
    evaluators are invisible), a read-only root built from ``/usr``, the Python install and the few
    inputs of this job, a sized tmpfs ``/tmp``, one writable output folder, an empty environment,
    no capabilities, uid/gid 65534.

    As root, bwrap runs in its *privileged* mode without a user namespace and keeps only
    CAP_SETUID/CAP_SETGID; the child (trusted code) then drops to 65534 itself and enters a user
    namespace of its own. Why not ``--unshare-user --uid 65534``: that maps 65534 inside to uid 0
    outside, and the kernel ignores RLIMIT_NPROC for uid 0, so a fork bomb would only be stopped by a
    cgroup. As a non-root user, bwrap makes the user namespace (``--unshare-user --uid 65534``); the
    real uid is then the worker's own, which is not exempt.

``none``
    No isolation beyond an empty environment, a new session and rlimits. Used only when bwrap is
    missing or broken and the pool was asked for ``auto``; a WARNING says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .cgroups import detect_cgroups

log = logging.getLogger("assay.evaluation")

SANDBOX_UID = 65534
SANDBOX_GID = 65534
# Paths inside the sandbox.
COMPUTE_DIR = "/compute"
INPUT_DIR = "/input"
SUBMISSION_DIR = "/submission"
OUTPUT_DIR = "/output"
CHILD_PATH = "/assay/evaluator_child.py"


class SandboxUnavailable(RuntimeError):
    """``sandbox="bwrap"`` was asked for and bubblewrap cannot run here."""


@dataclass(frozen=True)
class SandboxReport:
    """The backend to use, and the reason: shown to operators in logs and in every outcome."""

    backend: str  # "bwrap" | "none"
    reason: str
    bwrap: str | None = None
    privileged: bool = False  # bwrap runs as root without a user namespace (see module docstring)
    disable_userns: bool = False  # bwrap supports --disable-userns (non-root mode)
    cgroups: str = ""

    @property
    def usable(self) -> bool:
        return self.backend == "bwrap"

    def describe(self, with_cgroups: bool = True) -> str:
        cgroups = f"; {self.cgroups}" if with_cgroups and self.cgroups else ""
        if self.backend == "bwrap":
            return (
                f"bwrap (namespaces: net, pid, ipc, uts, mount; uid {SANDBOX_UID}; "
                f"{'privileged launcher' if self.privileged else 'user namespace'}{cgroups})"
            )
        return f"none: rlimits only, not isolated ({self.reason}{cgroups})"


def _ro_system_binds() -> list[str]:
    """``/usr`` plus the merged-/usr symlinks (or the real folders on a split-/usr system)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


def base_command(bwrap: str, *, privileged: bool, disable_userns: bool, tmp_bytes: int) -> list[str]:
    """The flags every evaluator gets, before the per-job binds."""
    cmd = [
        bwrap,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
    ]  # fmt: skip
    if privileged:
        # Kept only so the trusted child can drop to 65534 itself; gone after its setuid().
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        if disable_userns:
            cmd += ["--disable-userns"]
    cmd += _ro_system_binds()
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    return cmd


class BindPlan:
    """Bind mounts in an order bwrap accepts, with every parent folder created world-traversable.

    bwrap creates missing parents of a bind target with mode 0700 (owned by root), which the
    unprivileged sandbox user could not cross: e.g. a pyenv Python under ``/root/.pyenv``.
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self._made: set[str] = {"/", "/tmp", "/usr", "/proc", "/dev", "/etc"}
        self._bound: list[str] = ["/usr"]

    def covered(self, path: str) -> bool:
        return any(path == b or path.startswith(b.rstrip("/") + "/") for b in self._bound)

    def _parents(self, target: str) -> None:
        parts = Path(target).parts[1:-1]
        current = ""
        for part in parts:
            current += "/" + part
            if current not in self._made and not self.covered(current):
                self.args += ["--perms", "0755", "--dir", current]
                self._made.add(current)

    def ro(self, source: Path | str, target: str | None = None) -> None:
        target = target or str(source)
        if self.covered(target):
            return
        self._parents(target)
        self.args += ["--ro-bind", str(source), target]
        self._bound.append(target)
        self._made.add(target)

    def rw(self, source: Path | str, target: str) -> None:
        self._parents(target)
        self.args += ["--bind", str(source), target]
        self._bound.append(target)
        self._made.add(target)


def python_paths(python: str) -> list[str]:
    """Folders an interpreter needs inside the sandbox: the base install, and the worker's venv when
    ``python`` is the worker's own interpreter.

    A venv's ``bin/python`` is a symlink into the base install, and its site-packages live in the
    venv, so both are bound read-only at the same paths. An evaluation environment's venv is bound by
    its caller; the worker's venv (Django, assay) then stays out of the sandbox.
    """
    paths = {os.path.realpath(sys.base_prefix)}
    if python == sys.executable:  # not realpath: every venv's python resolves to the base interpreter
        paths.add(os.path.realpath(sys.prefix))
    real = os.path.realpath(python)
    paths.add(os.path.dirname(os.path.dirname(real)))
    return sorted(p for p in paths if p not in ("/", "/usr") and not p.startswith("/usr/"))


def _probe(cmd: list[str]) -> str | None:
    try:
        run = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"}
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if run.returncode != 0:
        return (run.stderr or run.stdout).strip() or f"exit code {run.returncode}"
    return None


@lru_cache(maxsize=4)
def detect_sandbox(bwrap_path: str | None = None) -> SandboxReport:
    """Which backend works on this machine, and why; runs bwrap once with the real flags to find out."""
    cgroups = detect_cgroups().describe()
    bwrap = bwrap_path or shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)
    if bwrap is None or not os.path.exists(bwrap):
        return SandboxReport("none", f"bubblewrap ({bwrap or 'bwrap'}) is not installed", cgroups=cgroups)
    privileged = os.geteuid() == 0
    try:
        helptext = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxReport("none", f"bwrap cannot run: {exc}", cgroups=cgroups)
    disable_userns = "--disable-userns" in helptext and not privileged
    cmd = base_command(bwrap, privileged=privileged, disable_userns=disable_userns, tmp_bytes=1024**2)
    plan = BindPlan()
    for path in python_paths(sys.executable):
        plan.ro(path)
    probe_python = [sys.executable, "-I", "-c", "import os, sys; os.setgid(65534); os.setuid(65534)"]
    if not privileged:
        probe_python = [sys.executable, "-I", "-c", "pass"]
    error = _probe([*cmd, *plan.args, "--remount-ro", "/", "--clearenv", *probe_python])
    if error is not None:
        return SandboxReport("none", f"bwrap is installed but does not work here: {error}", cgroups=cgroups)
    mode = "as root: privileged launcher, own user namespace per sandbox" if privileged else "user namespace"
    return SandboxReport(
        "bwrap", f"bwrap works ({mode})", bwrap, privileged=privileged, disable_userns=disable_userns, cgroups=cgroups
    )


def resolve_sandbox(mode: str) -> SandboxReport:
    """The report for a pool's ``sandbox=`` setting: fails for an unusable "bwrap", warns for "auto"."""
    if mode not in ("auto", "bwrap", "none"):
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'none', not {mode!r}")
    cgroups = detect_cgroups().describe()
    if mode == "none":
        return SandboxReport("none", "sandbox='none' was configured", cgroups=cgroups)
    report = detect_sandbox()
    if report.usable:
        return report
    if mode == "bwrap":
        raise SandboxUnavailable(f"sandbox='bwrap' was configured but {report.reason}")
    log.warning(
        "this machine cannot sandbox evaluation: %s. Evaluation scripts will run with resource limits "
        "only; they can reach the network and read the worker's files. Install bubblewrap "
        "(apt-get install bubblewrap) to isolate them.",
        report.reason,
    )
    return report
