"""Extracting a host's evaluation-script zip without letting it write anywhere else.

The zip comes from a challenge host, and is unpacked by the worker outside the sandbox, so it is
treated as hostile: absolute paths, ``..`` steps, symlinks, device files and zip bombs are refused
before anything is written. Files are created 0644 and folders 0755 (whatever the zip says) so that
the unprivileged sandbox user can read them and nobody can execute a surprise set-uid file.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath


class UnsafeZipError(ValueError):
    """The archive holds an entry that could escape the folder it is extracted to, or is too large."""


def _clean_name(raw: str) -> PurePosixPath | None:
    """The entry's relative path, None for an entry to skip (a folder entry or macOS metadata)."""
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise UnsafeZipError(f"zip entry {raw!r} contains a NUL byte")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeZipError(f"zip entry {raw!r} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeZipError(f"zip entry {raw!r} points outside the folder ('..')")
    if not parts or parts[0] == "__MACOSX":
        return None
    return PurePosixPath(*parts)


def safe_extract(zip_path: Path, dest: Path, *, max_total_bytes: int = 1024**3, max_entries: int = 20000) -> list[str]:
    """Extract ``zip_path`` into ``dest`` (created); returns the extracted file names.

    Sizes are counted while decompressing, not taken from the (forgeable) headers. Raises
    :class:`UnsafeZipError` for a hostile archive and for one that is not a readable zip at all.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    total = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            if len(infos) > max_entries:
                raise UnsafeZipError(f"the zip holds {len(infos)} entries, more than {max_entries}")
            for info in infos:
                rel = _clean_name(info.filename)
                if rel is None:
                    continue
                mode = info.external_attr >> 16
                kind = stat.S_IFMT(mode)
                if kind == stat.S_IFLNK:
                    raise UnsafeZipError(f"zip entry {info.filename!r} is a symbolic link")
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeZipError(f"zip entry {info.filename!r} is not a regular file")
                target = dest.joinpath(*rel.parts)
                if info.is_dir() or kind == stat.S_IFDIR:
                    target.mkdir(parents=True, exist_ok=True)
                    target.chmod(0o755)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    while block := src.read(1024 * 1024):
                        total += len(block)
                        if total > max_total_bytes:
                            raise UnsafeZipError(f"the zip unpacks to more than {max_total_bytes} bytes")
                        out.write(block)
                target.chmod(0o644)
                written.append(str(rel))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise UnsafeZipError(f"not a readable zip (damaged or truncated): {exc}") from exc
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return written


def package_root(folder: Path) -> Path:
    """The folder holding the package's ``__init__.py``.

    EvalAI requires the zip to be flat (EvalAI#2426: a nested top-level folder gives "module has no
    attribute 'evaluate'"). Assay accepts that common mistake when it is unambiguous: no
    ``__init__.py`` at the root and exactly one top-level folder, which has one.
    """
    if (folder / "__init__.py").is_file():
        return folder
    entries = [p for p in folder.iterdir() if p.name not in ("__MACOSX", ".DS_Store")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "__init__.py").is_file():
        return entries[0]
    return folder


def move_contents(src: Path, dest: Path) -> None:
    """Move everything in ``src`` into ``dest`` (used to flatten a nested top-level folder)."""
    for entry in src.iterdir():
        shutil.move(str(entry), str(dest / entry.name))
