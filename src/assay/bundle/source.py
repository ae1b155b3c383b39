"""Where a bundle's files come from — a zip, a folder, or nothing (a lone config) — read defensively.

Bundles come from strangers. Every path is checked before anything is opened: no absolute paths,
no ``..``, no symlinks, no device files; zips are bounded in entry count, total size and
compression ratio before a byte is inflated (and :mod:`zipfile` stops at the declared size, so a
lying header cannot inflate more). A zip's entry names and kinds are judged by
:mod:`assay.evaluation.safezip`'s rule, the one the worker unpacks by, on every entry (macOS and git
metadata too), so a zip that imports is one the worker will unpack.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from assay.evaluation.safezip import (
    UnsafeZipError,
    checked_entry_is_folder,
    checked_entry_path,
    checked_entry_readable,
)

from .errors import BundleError

try:  # zipfile inflates LZMA entries when Python has lzma; its errors are not OSErrors
    from lzma import LZMAError
except ImportError:  # pragma: no cover
    LZMAError = zlib.error  # type: ignore[misc,assignment]

CONFIG_NAMES = ("challenge_config.yaml", "challenge_config.yml")

# What reading a damaged or hostile zip can raise besides BadZipFile: corrupt deflate/bzip2/lzma
# streams, an unknown compression method, an encrypted entry (RuntimeError), a truncated file.
ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
    ValueError, zlib.error, LZMAError,
)  # fmt: skip
_SKIPPED_DIRS = {"__MACOSX", ".git"}
_SPOOL_BYTES = 8 * 1024**2  # an inner zip copied for seeking stays in memory up to this size


@dataclass(frozen=True)
class Limits:
    """Caps on what a bundle may hold; the server passes its settings, the CLI the defaults."""

    max_total_bytes: int = 2 * 1024**3
    max_entries: int = 5000
    max_ratio: int = 200
    max_file_bytes: int = 1024**3
    max_text_bytes: int = 2 * 1024**2
    max_logo_bytes: int = 5 * 1024**2
    max_script_bytes: int = 200 * 1024**2


class PathRefused(ValueError):
    """A path written in the config that names no file inside its bundle or package; ``code`` is the problem code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def relative_path(raw: str, *, inside: str = "bundle", absolute_hint: str = "paths are relative to the bundle") -> str:
    """A path written in the config (a different input from a zip's entries) as ``a/b/c``, inside the ``inside``;
    :class:`PathRefused` for an empty one, a NUL byte, an absolute path or any ``..`` step."""
    text = raw.strip().replace("\\", "/")
    if not text:
        raise PathRefused("empty file path", "bad_path")
    if "\x00" in text:
        raise PathRefused("the file path contains a NUL byte", "bad_path")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise PathRefused(f"{raw!r} is an absolute path; {absolute_hint}", "absolute_path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"{raw!r} points outside the {inside} ('..')", "path_traversal")
    if not parts:
        raise PathRefused(f"{raw!r} names no file", "bad_path")
    return "/".join(parts)


def clean_relpath(raw: str, *, file: str, key: str | None = None, line: int | None = None) -> str:
    """A path inside the bundle as ``a/b/c`` (:func:`relative_path`), its refusal a :class:`BundleError` located
    at the config's ``file``, ``key`` and ``line``."""
    where = {"file": file, "key": key, "line": line}
    if not isinstance(raw, str):
        raise BundleError.single("bad_path", "empty file path", **where)
    try:
        return relative_path(raw)
    except PathRefused as exc:
        raise BundleError.single(exc.code, str(exc), **where) from None


class Source:
    """Read access to the files of a bundle, by clean relative path."""

    kind = "config"
    label = "challenge_config.yaml"

    def exists(self, rel: str) -> bool:
        return False

    def is_dir(self, rel: str) -> bool:
        return False

    def size(self, rel: str) -> int:
        raise KeyError(rel)

    def open(self, rel: str) -> BinaryIO:
        raise KeyError(rel)

    def open_seekable(self, rel: str) -> BinaryIO:
        """``rel`` as a seekable file, for reading an inner zip's central directory alone (a folder's file is)."""
        return self.open(rel)

    def files_under(self, rel: str) -> list[str]:
        """Files below folder ``rel``, relative to it."""
        return []

    def read(self, rel: str, limit: int) -> bytes:
        size = self.size(rel)
        if size > limit:
            raise BundleError.single("file_too_large", f"{size} bytes; the limit is {limit}", file=rel)
        with self.open(rel) as fh:
            return fh.read(limit + 1)[:limit]

    def close(self) -> None:
        pass


class ConfigOnlySource(Source):
    """A lone ``challenge_config.yaml``: referenced files are reported, not required."""


class DirSource(Source):
    kind = "folder"

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.label = str(root)
        self._files: dict[str, int] = {}
        self._dirs: set[str] = {""}
        total = 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir
            dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DIRS]
            for name in dirnames + filenames:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISLNK(st.st_mode):
                    raise BundleError.single("symlink", "symbolic links are not allowed in a bundle", file=rel)
                if stat.S_ISDIR(st.st_mode):
                    self._dirs.add(rel)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    raise BundleError.single("special_file", "only regular files are allowed in a bundle", file=rel)
                if st.st_size > limits.max_file_bytes:
                    raise BundleError.single(
                        "file_too_large",
                        f"{st.st_size} bytes; the limit is {limits.max_file_bytes}",
                        file=rel,
                    )
                self._files[rel] = st.st_size
                total += st.st_size
                if len(self._files) > limits.max_entries:
                    raise BundleError.single("too_many_files", f"more than {limits.max_entries} files", file=self.label)
                if total > limits.max_total_bytes:
                    raise BundleError.single(
                        "bundle_too_large",
                        f"more than {limits.max_total_bytes} bytes in all",
                        file=self.label,
                    )

    def exists(self, rel: str) -> bool:
        return rel in self._files or rel in self._dirs

    def is_dir(self, rel: str) -> bool:
        return rel in self._dirs

    def size(self, rel: str) -> int:
        return self._files[rel]

    def open(self, rel: str) -> BinaryIO:
        if rel not in self._files:
            raise KeyError(rel)
        fd = os.open(self.root / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def files_under(self, rel: str) -> list[str]:
        prefix = rel.rstrip("/") + "/"
        return sorted(f[len(prefix) :] for f in self._files if f.startswith(prefix))


class ZipSource(Source):
    kind = "zip"

    def __init__(self, file: str | Path | IO[bytes], limits: Limits, label: str = "bundle.zip") -> None:
        self.label = label
        try:
            self.zf = zipfile.ZipFile(file)
        except ZIP_ERRORS as exc:
            raise BundleError.single("bad_zip", f"not a readable zip file ({exc})", file=label) from None
        try:
            self._entries, self._dirs = check_zip(self.zf, limits, label)
        except BaseException:
            self.zf.close()
            raise
        self.prefix = ""

    def with_prefix(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""

    def _key(self, rel: str) -> str:
        return self.prefix + rel

    def exists(self, rel: str) -> bool:
        return self._key(rel) in self._entries or self._key(rel) in self._dirs

    def is_dir(self, rel: str) -> bool:
        return self._key(rel) in self._dirs

    def size(self, rel: str) -> int:
        return self._entries[self._key(rel)].file_size

    def open(self, rel: str) -> BinaryIO:
        return self.zf.open(self._entries[self._key(rel)])  # type: ignore[return-value]

    def files_under(self, rel: str) -> list[str]:
        prefix = self._key(rel).rstrip("/") + "/"
        return sorted(n[len(prefix) :] for n in self._entries if n.startswith(prefix))

    def names(self) -> list[str]:
        return list(self._entries)

    def open_seekable(self, rel: str) -> BinaryIO:
        """The entry inflated once into a temporary file (in memory when small).

        :mod:`zipfile` finds an inner zip's central directory by seeking from its end, and a compressed
        entry can only seek back by inflating again from its start: opened in place, a large inner zip
        would be inflated several times over. The entry's size is already within the bundle's limits.
        """
        out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
        try:
            with self.open(rel) as entry:
                while True:
                    try:
                        block = entry.read(1024 * 1024)
                    except ZIP_ERRORS as exc:
                        raise BundleError.single(
                            "bad_zip", f"cannot inflate this entry ({exc})", file=f"{self.label}: {rel}"
                        ) from None
                    if not block:
                        break
                    out.write(block)  # a full disk is no fault of the bundle's: read_bundle says 'unreadable'
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return out  # type: ignore[return-value]

    def read(self, rel: str, limit: int) -> bytes:
        try:
            return super().read(rel, limit)
        except ZIP_ERRORS as exc:
            raise BundleError.single(
                "bad_zip", f"cannot inflate this entry ({exc})", file=f"{self.label}: {rel}"
            ) from None

    def close(self) -> None:
        self.zf.close()


def check_zip(zf: zipfile.ZipFile, limits: Limits, label: str) -> tuple[dict[str, zipfile.ZipInfo], set[str]]:
    """Refuse unsafe or oversized zips from their central directory alone; return files and folders."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise BundleError.single(
            "too_many_files", f"{len(infos)} entries; the limit is {limits.max_entries}", file=label
        )
    entries: dict[str, zipfile.ZipInfo] = {}
    dirs: set[str] = {""}
    total = 0
    for info in infos:
        name = info.filename
        path, folder = checked_entry(info, label)
        if path is None or path.parts[0] in _SKIPPED_DIRS or "__MACOSX" in path.parts:
            continue  # checked like any entry (the worker unpacks a script zip whole), but not a bundle file
        rel = path.as_posix()
        _readable(info, label)
        if folder:
            _add_dirs(dirs, rel + "/x")
            continue
        if rel in entries:
            raise BundleError.single("duplicate_entry", "the zip holds this path twice", file=f"{label}: {name}")
        if rel in dirs:
            raise BundleError.single("duplicate_entry", "a file and a folder share this path", file=f"{label}: {name}")
        if info.file_size > limits.max_file_bytes:
            raise BundleError.single(
                "file_too_large",
                f"{info.file_size} bytes; the limit is {limits.max_file_bytes}",
                file=f"{label}: {name}",
            )
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise BundleError.single(
                "zip_bomb",
                f"compression ratio {info.file_size // max(info.compress_size, 1)}:1 exceeds {limits.max_ratio}:1",
                file=f"{label}: {name}",
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise BundleError.single(
                "bundle_too_large", f"uncompressed size exceeds {limits.max_total_bytes} bytes", file=label
            )
        entries[rel] = info
        _add_dirs(dirs, rel)
    clash = dirs & set(entries)
    if clash:
        raise BundleError.single(
            "duplicate_entry", "a file and a folder share this path", file=f"{label}: {sorted(clash)[0]}"
        )
    return entries, dirs


def checked_entry(info: zipfile.ZipInfo, label: str) -> tuple[PurePosixPath | None, bool]:
    """The entry's clean path (None: to skip) and whether it is a folder, by the worker's rule
    (:func:`~assay.evaluation.safezip.checked_entry_path`, :func:`~assay.evaluation.safezip.checked_entry_is_folder`);
    its refusal is a :class:`BundleError` with the rule's code, naming ``label: entry``."""
    try:
        return checked_entry_path(info.filename), checked_entry_is_folder(info)
    except UnsafeZipError as exc:
        raise _refusal(exc, info, label) from None


def _readable(info: zipfile.ZipInfo, label: str) -> None:
    """:func:`~assay.evaluation.safezip.checked_entry_readable` as a :class:`BundleError` naming ``label: entry``."""
    try:
        checked_entry_readable(info)
    except UnsafeZipError as exc:
        raise _refusal(exc, info, label) from None


def _refusal(exc: UnsafeZipError, info: zipfile.ZipInfo, label: str) -> BundleError:
    return BundleError.single(exc.code, str(exc), file=f"{label}: {info.filename}")


def check_unpackable(source: Source, rel: str) -> None:
    """Refuse a zip in the bundle that a worker will unpack (a phase's test inputs) for what the worker would
    refuse: damage to its central directory, an entry's name or kind, an entry it cannot inflate. Only the
    central directory is read, so large inputs cost one pass at most (a zip bundle's entry is inflated to a
    temporary file; a folder's file is read in place)."""
    with source.open_seekable(rel) as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = zf.infolist()
        except ZIP_ERRORS as exc:
            raise BundleError.single("bad_zip", f"not a readable zip file ({exc})", file=rel) from None
    for info in infos:
        path, folder = checked_entry(info, rel)
        if path is not None and not folder:  # what the worker opens
            _readable(info, rel)


def _add_dirs(dirs: set[str], rel: str) -> None:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        dirs.add("/".join(parts[:i]))
