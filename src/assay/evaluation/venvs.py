"""The Python environments evaluation scripts run in, built once per machine outside the sandbox.

Why not the worker's own environment: a script must not see the platform (Django, assay, the worker's
token handling) nor break it by installing into it, and EvalAI's scripts expect EvalAI's scientific
stack instead (:mod:`assay.bundle.environments`). So each stack is a venv of its own, made from the base
interpreter without ``--system-site-packages``: a script sees the standard library, pip and the stack.

A script that needs more (its ``requirements.txt``, or packages it installs at import time) gets a
*layer*: a venv whose ``.pth`` puts the stack's site-packages after its own, holding only the extra
packages. Everything lives in a machine-wide cache (``ASSAY_ENVIRONMENTS_DIR``, else the user cache
folder), not the worker's workdir, so every worker process and every test on the machine reuses it::

    <root>/wheels/                   every wheel fetched; PIP_FIND_LINKS inside the sandbox
    <root>/stacks/<name>-<hash>/     a stack: venv with pip, assay-constraints.txt (its pins)
    <root>/layers/<hash>/            a layer on a stack: requirements.txt and the script's pip requests

Each is built under a file lock and marked ready last, so concurrent workers build it once and a
crashed build is redone. pip runs outside the sandbox (it needs the network) with an allow-listed
environment (never the worker's token), and installs wheels only: it first downloads into the wheel
folder, then installs from there with no index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from assay.bundle import environments
from assay.bundle.environments import VENV_MODULES, Environment
from assay.bundle.requirements import requirement_names, requirement_problems

log = logging.getLogger("assay.evaluation")

READY_MARKER = ".assay-ready"
CONSTRAINTS = "assay-constraints.txt"
ENVIRONMENTS_DIR_VARIABLE = "ASSAY_ENVIRONMENTS_DIR"
# Environment variables pip may need (index, proxy, certificates); nothing else of the worker's.
_PIP_ENV_PREFIXES = ("PIP_", "UV_")
_PIP_ENV_NAMES = (
    "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip
_WHEELS_ONLY = ["--only-binary=:all:", "--no-input", "--progress-bar", "off"]
_UNAVAILABLE = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the requirement)\s+(\S+)"
)

Echo = Callable[[str], None]


class SetupError(RuntimeError):
    """The evaluation script's environment could not be prepared; ``log`` holds the tool's output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log = log


def environments_dir() -> Path:
    """The machine-wide cache of environments: ``ASSAY_ENVIRONMENTS_DIR``, else the user cache folder."""
    configured = os.environ.get(ENVIRONMENTS_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return (Path(platformdirs.user_cache_dir("assay")) / "environments").resolve()


def pip_environment() -> dict[str, str]:
    """The allow-listed environment for pip and venv: index and proxy settings only."""
    env = {k: v for k, v in os.environ.items() if k in _PIP_ENV_NAMES or k.startswith(_PIP_ENV_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def sandbox_pip_environment(env_dir: Path, wheels: Path) -> dict[str, str]:
    """What a script's own ``pip install`` sees inside the sandbox: this venv, no index, the stack's pins.

    What the script asks for is installed beforehand, so pip answers "already satisfied"; anything
    else is looked for in the local wheel folder only, constrained as EvalAI constrains it.
    """
    return {
        "PATH": f"{env_dir}/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(env_dir),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CONSTRAINT": str(env_dir / CONSTRAINTS),
        "PIP_ONLY_BINARY": ":all:",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_PROGRESS_BAR": "off",
        "PIP_ROOT_USER_ACTION": "ignore",
    }


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def base_python() -> str:
    """The interpreter environments are made from: the base install, never the worker's venv."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def site_packages(env_dir: Path) -> Path:
    return env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def wheels_dir(root: Path) -> Path:
    return root / "wheels"


def stack_dir(env: Environment, root: Path) -> Path:
    """Where ``env`` is built: named by its pins and the base interpreter, so a change builds anew."""
    digest = hashlib.sha256(json.dumps([env.name, env.requirements, base_python(), sys.version]).encode())
    return root / "stacks" / f"{env.name}-{digest.hexdigest()[:12]}"


def is_ready(env_dir: Path) -> bool:
    return (env_dir / READY_MARKER).exists()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_stack(
    env: Environment | str | None = None, root: Path | None = None, *, timeout: float = 1800, echo: Echo | None = None
) -> Path:
    """The venv of ``env`` (an Environment or its name; None: the default), built on first use, once per
    machine; raises SetupError with pip's output (ValueError for an unknown name).
    """
    env = env if isinstance(env, Environment) else environments.get(env)
    root = root or environments_dir()
    target = stack_dir(env, root)
    if is_ready(target):
        return target
    with _locked(target.parent / f"{target.name}.lock"):
        if not is_ready(target):
            _say(echo, f"building the {env.name} evaluation environment in {target} (once per machine)")
            started = time.monotonic()
            _build_stack(env, target, root, time.monotonic() + timeout, echo)
            _say(echo, f"{env.name} is ready ({time.monotonic() - started:.0f} s)")
    return target


def _build_stack(env: Environment, target: Path, root: Path, deadline: float, echo: Echo | None) -> None:
    if target.exists():
        shutil.rmtree(target)  # a half-built one from a crashed or timed-out attempt
    what = f"creating the {env.name} environment"
    _run([base_python(), "-m", "venv", str(target)], deadline, what, echo)  # with pip: scripts may run it
    python = str(env_python(target))
    pins = "".join(f"{line}\n" for line in env.requirements)
    (target / CONSTRAINTS).write_text(pins)
    if env.requirements:
        _download(
            python, ["-r", str(target / CONSTRAINTS)], root, deadline, f"downloading the {env.name} packages", echo
        )
        _install(python, ["-r", str(target / CONSTRAINTS)], root, deadline, f"installing the {env.name} packages", echo)
    modules = sorted(env.modules - VENV_MODULES)  # setuptools' distutils hack objects to a prior numpy import
    probe = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    _run([python, "-I", "-c", probe], deadline, f"checking the {env.name} environment", echo)
    (target / READY_MARKER).write_text("ok\n")


def ensure_layer(
    stack: Path,
    env: Environment,
    *,
    requirements: str = "",
    requests: list[tuple[str, str]] = (),  # type: ignore[assignment]
    optional: list[str] = (),  # type: ignore[assignment]
    root: Path | None = None,
    timeout: float = 900,
) -> Path:
    """A venv on top of ``stack`` with ``requirements`` (a requirements.txt), ``requests`` (what the script
    will ``pip install``: (requirement, "file:line")) and, best effort, ``optional`` distributions.

    Raises SetupError naming what cannot be provided.
    """
    root = root or environments_dir()
    key = json.dumps([stack.name, requirements, sorted(r for r, _ in requests), sorted(optional)])
    target = root / "layers" / hashlib.sha256(key.encode()).hexdigest()[:32]
    if is_ready(target):
        return target
    with _locked(target.parent / f"{target.name}.lock"):
        if not is_ready(target):
            _build_layer(stack, env, target, root, requirements, list(requests), list(optional), timeout)
    return target


def _build_layer(
    stack: Path,
    env: Environment,
    target: Path,
    root: Path,
    requirements: str,
    requests: list[tuple[str, str]],
    optional: list[str],
    timeout: float,
) -> None:
    refused = requirement_problems(requirements)
    if refused:  # pip would build these from source, whatever --only-binary says
        lines = "\n".join(str(p) for p in refused)
        raise SetupError(f"the evaluation script's requirements.txt was not installed: {refused[0]}", lines)
    deadline = time.monotonic() + timeout
    if target.exists():
        shutil.rmtree(target)
    _run([base_python(), "-m", "venv", "--without-pip", str(target)], deadline, "creating the script's environment")
    (site_packages(target) / "_assay_stack.pth").write_text(f"{site_packages(stack)}\n")
    _pip_launchers(target)
    # The stack's pins hold for everything but what requirements.txt names itself (the host chose those).
    named = requirement_names(requirements)
    pins = [line for line in env.requirements if canonicalize_name(line.partition("==")[0]) not in named]
    (target / CONSTRAINTS).write_text("".join(f"{line}\n" for line in pins))
    python = str(env_python(target))
    wanted = [requirements.strip(), *(r for r, _ in requests)]
    reqs = target / "assay-requirements.txt"
    args = ["-c", str(target / CONSTRAINTS), "-r", str(reqs)]
    for extra in (optional, []):
        reqs.write_text("\n".join(x for x in [*wanted, *extra] if x) + "\n")
        try:
            _download(python, args, root, deadline, "downloading the evaluation script's packages")
            break
        except SetupError as exc:
            if extra:  # only guessed from imports: go on without them
                log.info("packages guessed from the script's imports not provided (%s): %s", extra, exc.message)
                continue
            raise _explain(exc, requirements, requests) from None
    try:
        _install(python, args, root, deadline, "installing the evaluation script's packages")
    except SetupError as exc:
        raise _explain(exc, requirements, requests) from None
    (target / READY_MARKER).write_text("ok\n")


def _explain(exc: SetupError, requirements: str, requests: list[tuple[str, str]]) -> SetupError:
    """pip's failure, said in terms of what the script asked for (the package, and where)."""
    match = _UNAVAILABLE.search(exc.log)
    culprit = match.group(1).strip("'\"") if match else None
    request = next((r for r in requests if culprit is not None and _same_package(r[0], culprit)), None)
    if request is None and culprit is None and len(requests) == 1 and not requirements.strip():
        request = requests[0]  # nothing else was installed: it must be this one
    if request is not None:
        text, where = request
        return SetupError(
            f"the evaluation script installs {text!r} at import time ({where}), and it cannot be provided: "
            f"no wheel of it installs here with the environment's packages ({exc.message})",
            exc.log,
        )
    if requirements.strip():
        return SetupError(f"the evaluation script's requirements.txt could not be installed: {exc.message}", exc.log)
    names = ", ".join(repr(text) for text, _ in requests)
    return SetupError(f"the packages the evaluation script installs at import time ({names}) cannot be provided: "
                      f"{exc.message}", exc.log)  # fmt: skip


def _same_package(requirement: str, name: str) -> bool:
    try:
        wanted = canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return requirement.startswith(name)
    return wanted == canonicalize_name(re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0])


def _pip_launchers(env_dir: Path) -> None:
    """``pip`` and ``pip3`` in a layer's bin (its pip comes from the stack), so ``os.system("pip ...")`` works."""
    script = f"#!{env_python(env_dir)}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
    for name in ("pip", "pip3", f"pip{sys.version_info[0]}.{sys.version_info[1]}"):
        path = env_dir / "bin" / name
        path.write_text(script)
        path.chmod(0o755)


def _download(python: str, args: list[str], root: Path, deadline: float, what: str, echo: Echo | None = None) -> None:
    wheels = wheels_dir(root)
    wheels.mkdir(parents=True, exist_ok=True)
    # One download at a time: pip writes straight into the folder another pip may be reading.
    with _locked(root / "wheels.lock"):
        _run([python, "-m", "pip", "download", *_WHEELS_ONLY, "-d", str(wheels), *args], deadline, what, echo)


def _install(python: str, args: list[str], root: Path, deadline: float, what: str, echo: Echo | None = None) -> None:
    wheels = str(wheels_dir(root))
    cmd = [python, "-m", "pip", "install", *_WHEELS_ONLY, "--no-index", "--find-links", wheels, *args]
    _run(cmd, deadline, what, echo)


def _say(echo: Echo | None, message: str) -> None:
    log.info("%s", message)
    if echo is not None:
        echo(message)


def _run(cmd: list[str], deadline: float, what: str, echo: Echo | None = None) -> str:
    """Run a build step; its output is streamed to ``echo`` (a progress display) and kept for errors."""
    timeout = max(1.0, deadline - time.monotonic())
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            cmd,
            env=pip_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise SetupError(f"{what} could not start: {exc}") from None
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)  # a silent, stuck pip is stopped too
    timer.start()
    with proc:
        try:
            for line in proc.stdout:
                lines.append(line)
                if echo is not None and line.strip():
                    echo("  " + line.rstrip())
            proc.wait()
        finally:
            timer.cancel()
    if proc.returncode != 0 and time.monotonic() >= deadline:
        raise SetupError(f"{what} took longer than {timeout:g} s and was stopped", "".join(lines))
    out = "".join(lines)
    if proc.returncode != 0:
        tail = "\n".join(line for line in out.strip().splitlines()[-3:])
        raise SetupError(f"{what} failed (exit code {proc.returncode}): {tail}", out)
    return out
