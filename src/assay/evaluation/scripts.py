"""Turning a script zip into an importable package folder (and its venv), once per script hash.

The layout mimics EvalAI's worker, so scripts that rely on it keep working::

    <workdir>/scripts/<sha256>/compute/                 -> bound read-only at /compute, on sys.path
        challenge_data/__init__.py
        challenge_data/challenge_<sha256[:16]>/...      -> the zip, imported as a package

EvalAI names the package after the challenge's primary key; Assay uses the script's hash, which is
unique per script content and needs no database.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .safezip import UnsafeZipError, move_contents, package_root, safe_extract
from .venvs import SetupError, ensure_environment, env_python

_sha_cache: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()


@dataclass(frozen=True)
class PreparedScript:
    """An extracted script package and the interpreter that runs it."""

    sha256: str
    compute_dir: Path
    package: str
    python: str
    env_dir: Path | None  # the per-script venv, bound read-only into the sandbox

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


def prepare_script(script_zip: Path, workdir: Path, *, setup_timeout: float = 900) -> PreparedScript:
    """Extract (once) and, when it has a requirements.txt, build its venv (once); SetupError otherwise.

    ``script_zip`` may also be a folder (zipped here first), as a host's remote worker often has it.
    """
    try:
        if script_zip.is_dir():
            script_zip = zip_folder(script_zip, workdir)
        sha = file_sha256(script_zip)
    except OSError as exc:
        raise SetupError(f"the evaluation script archive cannot be read: {exc}") from None
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
    requirements = package_dir / "requirements.txt"
    if requirements.is_file() and requirements.read_text(errors="replace").strip():
        env_dir = ensure_environment(requirements, workdir / "envs", timeout=setup_timeout)
        return PreparedScript(sha, compute, package, str(env_python(env_dir)), env_dir)
    return PreparedScript(sha, compute, package, sys.executable, None)


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
