"""The evaluation script as one flat zip: taken as it is, or built from a folder as EvalAI's GitHub flow builds it.

EvalAI-Starters repositories keep the script as an ``evaluation_script/`` folder and never commit the
zip the config names: EvalAI's GitHub Action (``github/utils.py``) writes ``evaluation_script.zip``
from that folder on every push, with paths relative to the folder. So a repository read as it is
names a zip that is not there. Assay builds the same zip itself, and builds it the same way every
time (sorted names, fixed dates and modes), so the script's hash changes only when its files do.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .errors import BundleError
from .source import Limits, Source

# A fixed date and mode for every entry: the zip of an unchanged folder is byte for byte the same.
_ENTRY_DATE = (1980, 1, 1, 0, 0, 0)
_ENTRY_MODE = 0o100644 << 16
# Left out of a zipped folder: caches and Finder files, never part of a script (run.sh drops .DS_Store too).
_LEFT_OUT_DIRS = {"__pycache__", ".ipynb_checkpoints"}
_LEFT_OUT_NAMES = {".DS_Store", "Thumbs.db"}
_LEFT_OUT_SUFFIXES = (".pyc", ".pyo")


@dataclass
class ScriptArchive:
    """The evaluation script as one zip (a folder in the bundle is zipped), flat, with its hash later."""

    data: bytes
    names: list[str]
    has_requirements: bool


@dataclass
class Located:
    """Where the script is in the bundle, and what Assay did to find it (for a warning)."""

    rel: str
    is_folder: bool
    notes: list[str] = field(default_factory=list)


def locate(source: Source, rel: str) -> Located | None:
    """The zip ``rel`` names; else the folder it names; else the folder its missing ``.zip`` was built from."""
    if source.is_dir(rel):
        return Located(rel, True)  # the documented folder form: the host asked for exactly this
    if source.exists(rel):
        return Located(rel, False)
    folder = rel[: -len(".zip")] if rel.lower().endswith(".zip") else ""
    if folder and source.is_dir(folder):
        return Located(
            folder,
            True,
            [
                f"{rel!r} is not in the bundle: the folder '{folder}/' is zipped in its place, as EvalAI's"
                " GitHub Action builds it from a starter repository"
            ],
        )
    return None


def _is_left_out(name: str) -> bool:
    """A cache or Finder file (by its path in the script), never part of a script."""
    parts = name.split("/")
    return (
        bool(_LEFT_OUT_DIRS & set(parts[:-1])) or parts[-1] in _LEFT_OUT_NAMES or parts[-1].endswith(_LEFT_OUT_SUFFIXES)
    )


def folder_files(source: Source, folder: str, zip_name: str) -> tuple[list[str], str | None, list[str]]:
    """The folder's files to zip, a zip that run.sh left inside it (if any), and what was left out.

    Some starter repositories' run.sh write ``evaluation_script.zip`` *inside* the folder. That file
    is a stale copy of the folder itself: zipping it in would nest the script in itself, so it is
    left out — unless it is all the folder holds, in which case it is the script.
    """
    names = source.files_under(folder)
    stale_names = {zip_name.lower(), PurePosixPath(folder).name.lower() + ".zip"}
    stale = next((n for n in names if "/" not in n and n.lower() in stale_names), None)
    kept: list[str] = []
    left_out: list[str] = []
    for name in names:
        if name == stale:
            continue
        if _is_left_out(name):
            left_out.append(name)
            continue
        kept.append(name)
    return kept, stale, left_out


def zip_folder(source: Source, folder: str, names: list[str], limits: Limits) -> bytes:
    """``names`` under ``folder`` as a flat, deterministic zip (paths relative to the folder)."""
    buf = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(names):
            payload = source.read(f"{folder}/{name}", limits.max_script_bytes)
            total += len(payload)
            if total > limits.max_script_bytes:
                raise BundleError.single("script_too_large", f"more than {limits.max_script_bytes} bytes", file=folder)
            info = zipfile.ZipInfo(name, date_time=_ENTRY_DATE)
            info.external_attr = _ENTRY_MODE
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, payload)
    return buf.getvalue()


def differences(source: Source, folder: str, data: bytes, limits: Limits) -> list[str]:
    """Files where the zip ``data`` and the folder it is usually built from disagree (added, missing or changed).

    EvalAI's GitHub Action rebuilds the zip from the folder on every push, so a committed zip that has
    drifted from its folder is not what EvalAI would run; the reader warns instead of guessing.
    """
    names, _, _ = folder_files(source, folder, "")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        in_zip = {
            info.filename: info
            for info in zf.infolist()
            if not info.is_dir() and not info.filename.startswith("__MACOSX/") and not _is_left_out(info.filename)
        }
        differ = sorted(set(in_zip) ^ set(names))
        for name in sorted(set(in_zip) & set(names)):
            if zf.read(in_zip[name]) != source.read(f"{folder}/{name}", limits.max_script_bytes):
                differ.append(name)
    return sorted(differ)
