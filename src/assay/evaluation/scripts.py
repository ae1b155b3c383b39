"""Turning a script zip into an importable package folder and the environment it runs in, once per hash.

The layout mimics EvalAI's worker, so scripts that rely on it keep working::

    <workdir>/scripts/<sha256>/compute/                 -> bound read-only at /compute, on sys.path
        challenge_data/__init__.py
        challenge_data/challenge_<sha256[:16]>/...      -> the zip, imported as a package

EvalAI names the package after the challenge's primary key; Assay uses the script's hash, which is
unique per script content and needs no database.

The interpreter is the chosen environment's (:mod:`.venvs`): EvalAI's stack, plus a layer when the
script has a ``requirements.txt`` or installs packages at import time. What it will ``pip install`` is
read from its source (:mod:`assay.bundle.script_imports`) and installed beforehand, so that inside the
offline sandbox pip finds it already there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from assay.bundle import environments
from assay.bundle.environments import Environment
from assay.bundle.requirements import requirement_names
from assay.bundle.script_imports import ScriptScan, scan_sources

from .safezip import UnsafeZipError, move_contents, package_root, safe_extract
from .venvs import (
    SetupError,
    ensure_layer,
    ensure_stack,
    env_python,
    environments_dir,
    sandbox_pip_environment,
    wheels_dir,
)

_sha_cache: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()
_prepared: dict[tuple[str, str, str], PreparedScript] = {}
_prepared_lock = threading.Lock()


@dataclass(frozen=True)
class PreparedScript:
    """An extracted script package, the interpreter that runs it and what the sandbox must provide."""

    sha256: str
    compute_dir: Path
    package: str
    python: str
    environment: str = environments.DEFAULT_ENVIRONMENT
    mounts: tuple[str, ...] = ()  # folders the interpreter needs, bound read-only into the sandbox
    environ: tuple[tuple[str, str], ...] = ()  # the child's PATH, VIRTUAL_ENV and offline pip settings

    @property
    def package_dir(self) -> Path:
        return self.compute_dir.joinpath(*self.package.split("."))


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a warm pool does not re-read it."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _sha_lock:
        if key in _sha_cache:
            return _sha_cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    value = digest.hexdigest()
    with _sha_lock:
        _sha_cache[key] = value
    return value


def zip_folder(folder: Path, workdir: Path) -> Path:
    """A deterministic zip of a script *folder* (a host's local checkout), so it is cached like a zip.

    Symlinks are not followed (they could point anywhere on the worker); ``__pycache__`` is skipped.
    """
    entries = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink() or "__pycache__" in rel.parts or not path.is_file():
            continue
        entries.append((rel.as_posix(), path.read_bytes()))
    digest = hashlib.sha256()
    for name, data in entries:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    target = workdir / "scripts" / f"folder-{digest.hexdigest()}.zip"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        os.replace(tmp, target)
    return target


def prepare_script(
    script_zip: Path, workdir: Path, *, environment: str | None = None, setup_timeout: float = 900
) -> PreparedScript:
    """Extract (once) and provide its environment (once); SetupError when either cannot be done.

    ``script_zip`` may also be a folder (zipped here first), as a host's remote worker often has it.
    ``environment`` names one of :data:`assay.bundle.environments.ENVIRONMENTS` (None: the default).
    """
    try:
        env = environments.get(environment)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    try:
        if script_zip.is_dir():
            script_zip = zip_folder(script_zip, workdir)
        sha = file_sha256(script_zip)
    except OSError as exc:
        raise SetupError(f"the evaluation script archive cannot be read: {exc}") from None
    memo = (str(workdir), sha, env.name)
    with _prepared_lock:
        known = _prepared.get(memo)
    if known is not None and os.path.exists(known.python) and (known.compute_dir.parent / ".ready").exists():
        return known  # checked: an operator may have cleared the environment cache or the workdir
    root = workdir / "scripts" / sha
    compute = root / "compute"
    package = f"challenge_data.challenge_{sha[:16]}"
    package_dir = compute / "challenge_data" / f"challenge_{sha[:16]}"
    if not (root / ".ready").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / f"{sha}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (root / ".ready").exists():
                _extract(script_zip, root, package_dir)
    prepared = PreparedScript(sha, compute, package, *_environment(package_dir, env, setup_timeout))
    with _prepared_lock:
        _prepared[memo] = prepared
    return prepared


def _environment(package_dir: Path, env: Environment, timeout: float) -> tuple:
    """(python, environment name, mounts, environ) for the script in ``package_dir``."""
    cache = environments_dir()
    stack = ensure_stack(env, cache, timeout=max(timeout, 1800))
    requirements_file = package_dir / "requirements.txt"
    requirements = requirements_file.read_text(errors="replace") if requirements_file.is_file() else ""
    scan = scan_script(package_dir)
    requests, optional = pip_needs(scan, env, requirements)
    if requirements.strip() or requests or optional:
        env_dir = ensure_layer(
            stack, env, requirements=requirements, requests=requests, optional=optional, root=cache, timeout=timeout
        )
        mounts = (str(env_dir), str(stack))
    else:
        env_dir = stack
        mounts = (str(stack),)
    wheels = wheels_dir(cache)
    wheels.mkdir(parents=True, exist_ok=True)
    environ = tuple(sandbox_pip_environment(env_dir, wheels).items())
    return str(env_python(env_dir)), env.name, (*mounts, str(wheels)), environ


def scan_script(package_dir: Path) -> ScriptScan:
    """Read the script's Python files (not run) for its imports and pip installs."""
    sources = []
    names = []
    for path in sorted(package_dir.rglob("*")):
        rel = path.relative_to(package_dir).as_posix()
        names.append(rel)
        if path.suffix == ".py" and path.is_file() and not path.is_symlink() and path.stat().st_size < 5 * 1024**2:
            sources.append((rel, path.read_text(errors="replace")))
    return scan_sources(sources, names)


def pip_needs(scan: ScriptScan, env: Environment, requirements: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What to install beforehand: (requirement, "file:line") the script will ask pip for, and the known
    distributions of its imports when it runs pip at all (a computed ``install(name)`` may want them).

    What the stack already has at a version the request accepts needs nothing; a request the stack's
    pins refuse fails here, naming it (EvalAI constrains such installs to its stack too).
    """
    pins = env.pins()
    named = requirement_names(requirements)
    requests: list[tuple[str, str]] = []
    for found in scan.pip_requests:
        where = f"{found.file}:{found.line}"
        try:
            req = Requirement(found.name)
        except InvalidRequirement:
            raise SetupError(
                f"the evaluation script installs {found.name!r} at import time ({where}); evaluation has no "
                "network, so only packages from the index (as wheels) can be provided beforehand"
            ) from None
        if req.url:
            raise SetupError(
                f"the evaluation script installs {found.name!r} at import time ({where}); evaluation has no "
                "network, and a URL is never installed (pip would build it outside the sandbox): vendor that "
                "code into the script instead"
            )
        name = canonicalize_name(req.name)
        if name in pins and name not in named:
            if req.specifier.contains(pins[name], prereleases=True):
                continue  # already there: pip will say "Requirement already satisfied"
            raise SetupError(
                f"the evaluation script installs {found.name!r} at import time ({where}), but the {env.name} "
                f"environment has {req.name} {pins[name]} and installs are constrained to it (as on EvalAI); "
                "name the version in requirements.txt to replace it, or choose another evaluation_environment"
            )
        if (found.name, where) not in requests:
            requests.append((found.name, where))
    optional: list[str] = []
    if scan.calls_pip:
        asked = {canonicalize_name(Requirement(r).name) for r, _ in requests} | named | set(pins)
        for module in sorted(scan.import_names() - env.modules):
            dist = environments.distribution_for(module)
            if dist and canonicalize_name(dist) not in asked:
                optional.append(dist)
                asked.add(canonicalize_name(dist))
    return requests, optional


def _extract(script_zip: Path, root: Path, package_dir: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    staging = root.parent / f".{root.name}.{uuid.uuid4().hex}"
    try:
        target = staging / package_dir.relative_to(root)
        try:
            safe_extract(script_zip, target)
        except UnsafeZipError as exc:
            raise SetupError(f"the evaluation script archive is unsafe: {exc}") from None
        except (OSError, ValueError) as exc:
            raise SetupError(f"the evaluation script archive cannot be extracted: {exc}") from None
        nested = package_root(target)
        if nested != target:
            holder = nested.rename(target.parent / f".nested-{uuid.uuid4().hex}")
            move_contents(holder, target)
            holder.rmdir()
        if not (target / "__init__.py").is_file():
            raise SetupError(
                "the evaluation script archive has no __init__.py at its root; EvalAI scripts are zipped "
                "flat, with __init__.py exposing evaluate() (e.g. 'from .main import evaluate')"
            )
        (target.parent / "__init__.py").write_text("")
        for folder in (staging, staging / "compute", target.parent):
            os.chmod(folder, 0o755)
        os.chmod(target.parent / "__init__.py", 0o644)
        (staging / ".ready").write_text("ok\n")
        staging.rename(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
