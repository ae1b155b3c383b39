"""Per-script Python environments for evaluation scripts that ship a ``requirements.txt``.

Why a venv per requirements file: a host's dependencies must never be installed into the worker's own
environment (EvalAI installs them into the worker, where one challenge can break another). The venv
is created with ``--system-site-packages`` and, when the worker itself runs in a venv, a ``.pth`` file
that appends the worker venv's site-packages. So a script sees, in order: its own requirements, the
worker's scientific stack (numpy etc., installed once), then the base interpreter's packages.

Environments are cached under ``<workdir>/envs/<sha256 of requirements.txt>`` and built under a file
lock, so several worker processes sharing a workdir build each environment once. pip runs outside
the sandbox (it needs the network) with a minimal environment (never the worker's token), and installs
wheels only: what a requirements file may name is checked first (``assay.bundle.requirements``), since
building a source distribution would run its code here.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

from assay.bundle.requirements import requirement_problems

READY_MARKER = ".assay-ready"
# Environment variables pip may need (index, proxy, certificates); nothing else of the worker's.
_PIP_ENV_PREFIXES = ("PIP_", "UV_")
_PIP_ENV_NAMES = (
    "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip


class SetupError(RuntimeError):
    """The evaluation script's environment could not be prepared; ``log`` holds the tool's output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log = log


def requirements_hash(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def pip_environment() -> dict[str, str]:
    """The allow-listed environment for pip and venv: index and proxy settings only."""
    env = {k: v for k, v in os.environ.items() if k in _PIP_ENV_NAMES or k.startswith(_PIP_ENV_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def parent_site_packages() -> list[str]:
    """The worker venv's site-packages, when the worker runs in a venv (else nothing to add)."""
    if sys.prefix == sys.base_prefix:
        return []
    return [p for p in site.getsitepackages() if p.startswith(sys.prefix)]


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def ensure_environment(requirements: Path, envs_dir: Path, *, timeout: float = 900) -> Path:
    """The venv for ``requirements`` (built on first use); raises SetupError with pip's output."""
    digest = requirements_hash(requirements)
    env_dir = envs_dir / digest
    if (env_dir / READY_MARKER).exists():
        return env_dir
    envs_dir.mkdir(parents=True, exist_ok=True)
    with open(envs_dir / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (env_dir / READY_MARKER).exists():
            return env_dir
        if env_dir.exists():
            shutil.rmtree(env_dir)  # a half-built one from a crashed or timed-out attempt
        _build(requirements, env_dir, timeout)
    return env_dir


def _run(cmd: list[str], timeout: float, what: str) -> str:
    try:
        run = subprocess.run(
            cmd,
            env=pip_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            text=True,
            errors="replace",
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        raise SetupError(f"{what} took longer than {timeout:g} s and was stopped", out) from None
    except OSError as exc:
        raise SetupError(f"{what} could not start: {exc}") from None
    if run.returncode != 0:
        tail = "\n".join(line for line in run.stdout.strip().splitlines()[-3:])
        raise SetupError(f"{what} failed (exit code {run.returncode}): {tail}", run.stdout)
    return run.stdout


def _build(requirements: Path, env_dir: Path, timeout: float) -> None:
    refused = requirement_problems(requirements.read_text(errors="replace"))
    if refused:  # pip would build these from source, whatever --only-binary says
        lines = "\n".join(str(p) for p in refused)
        raise SetupError(f"the evaluation script's requirements.txt was not installed: {refused[0]}", lines)
    deadline = time.monotonic() + timeout
    have_pip = _worker_has_pip()
    cmd = [sys.executable, "-m", "venv", "--system-site-packages"]
    if have_pip:
        cmd.append("--without-pip")  # the worker's pip installs into it (--python): seconds faster
    _run([*cmd, str(env_dir)], timeout, "creating the script's virtual environment")
    extra = parent_site_packages()
    if extra:
        site_dir = next((env_dir / "lib").glob("python*/site-packages"))
        (site_dir / "_assay_worker_packages.pth").write_text("\n".join(extra) + "\n")
    python = env_python(env_dir)
    if have_pip:
        pip = [sys.executable, "-m", "pip", "--python", str(python)]
    else:
        pip = [str(python), "-m", "pip"]
    remaining = max(1.0, deadline - time.monotonic())
    log = _run(
        # wheels only: building a source distribution would run its setup.py here, outside the sandbox
        [*pip, "install", "--only-binary=:all:", "--no-input", "--progress-bar", "off", "-r", str(requirements)],
        remaining,
        "installing the evaluation script's requirements.txt",
    )
    (env_dir / "pip-install.log").write_text(log)
    (env_dir / READY_MARKER).write_text("ok\n")


def _worker_has_pip() -> bool:
    """pip >= 22.3 can install into another interpreter (``--python``), saving ensurepip's seconds."""
    if importlib.util.find_spec("pip") is None:
        return False
    try:
        major, minor = (int(x) for x in importlib.metadata.version("pip").split(".")[:2])
    except (ValueError, importlib.metadata.PackageNotFoundError):
        return False
    return (major, minor) >= (22, 3)
