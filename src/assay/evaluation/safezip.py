"""Extracting a host's evaluation-script zip without letting it write anywhere else.

The zip comes from a challenge host, and is unpacked by the worker outside the sandbox, so it is
treated as hostile: control characters, absolute paths, ``..`` steps, symlinks, device files and zip
bombs are refused before anything is written. Files are created 0644 and folders 0755 (whatever the
zip says) so that the unprivileged sandbox user can read them and nobody can execute a surprise
set-uid file. The name and kind rules are public (:func:`checked_entry_path`,
:func:`checked_entry_is_folder`, and :func:`checked_entry_readable` for what :mod:`zipfile` cannot
inflate): the server checks code bundles and data package versions by them when they arrive, and the
bundle reader the evaluation script and test inputs zips at import, so an archive is refused there for
the same reasons as here.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath


class UnsafeZipError(ValueError):
    """The archive holds an entry that could escape the folder it is extracted to, or is too large.

    ``code`` says which rule refused it, in the bundle reader's problem codes (``bad_path`` for a control
    character, ``absolute_path``, ``path_traversal``, ``symlink``, ``special_file``, ``encrypted_zip``,
    ``bad_zip``; and ``too_many_files``, ``too_large`` from :func:`safe_extract`'s limits), so each face that
    reports it can map it without parsing the message.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple:  # the code survives a trip between processes
        return type(self), (str(self), self.code)


def checked_entry_path(name: str) -> PurePosixPath | None:
    """An archive entry's name as a clean relative path; None for a name to skip (a bare folder, macOS metadata).

    The one naming rule for every zip Assay takes from someone else (evaluation scripts and test inputs
    unpacked here, code bundles and data package versions checked when they arrive): :class:`UnsafeZipError`
    for a control character (NUL among them), an absolute path (``/…``, ``C:…``) or a ``..`` step, with
    backslashes read as separators. The messages name the entry and say what is wrong with the archive
    itself, so they read the same whichever face reports them.
    """
    path = name.replace("\\", "/")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafeZipError(f"zip entry {name!r} holds a control character", "bad_path")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise UnsafeZipError(f"zip entry {name!r} is an absolute path", "absolute_path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeZipError(f"zip entry {name!r} points outside the archive ('..')", "path_traversal")
    if not parts or parts[0] == "__MACOSX":
        return None
    return PurePosixPath(*parts)


def checked_entry_is_folder(info: zipfile.ZipInfo) -> bool:
    """Whether the entry is a folder; :class:`UnsafeZipError` for a symbolic link or any other non-regular file."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise UnsafeZipError(f"zip entry {info.filename!r} is a symbolic link", "symlink")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeZipError(f"zip entry {info.filename!r} is not a regular file", "special_file")
    return info.is_dir() or kind == stat.S_IFDIR


_INFLATABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def checked_entry_readable(info: zipfile.ZipInfo) -> None:
    """:class:`UnsafeZipError` for a file entry :mod:`zipfile` cannot inflate, told by the central directory alone:
    an encrypted one (nobody gives a password) or one compressed by a method it lacks (Deflate64, WinZip AES)."""
    if info.flag_bits & 0x1:
        raise UnsafeZipError(f"zip entry {info.filename!r} is encrypted, which is not supported", "encrypted_zip")
    if info.compress_type not in _INFLATABLE:
        raise UnsafeZipError(
            f"zip entry {info.filename!r} uses compression method {info.compress_type}, which cannot be read"
            " (store or deflate it)",
            "bad_zip",
        )


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
                raise UnsafeZipError(f"the zip holds {len(infos)} entries, more than {max_entries}", "too_many_files")
            for info in infos:
                rel = checked_entry_path(info.filename)
                folder = checked_entry_is_folder(info)
                if rel is None:
                    continue
                target = dest.joinpath(*rel.parts)
                if folder:
                    target.mkdir(parents=True, exist_ok=True)
                    target.chmod(0o755)
                    continue
                checked_entry_readable(info)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    while block := src.read(1024 * 1024):
                        total += len(block)
                        if total > max_total_bytes:
                            raise UnsafeZipError(f"the zip unpacks to more than {max_total_bytes} bytes", "too_large")
                        out.write(block)
                target.chmod(0o644)
                written.append(str(rel))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise UnsafeZipError(f"not a readable zip (damaged or truncated): {exc}", "bad_zip") from exc
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
