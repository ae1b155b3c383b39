"""The backup archive: a tar of ``format.json``, ``rows.jsonl``, ``files/<storage name>`` and, last,
``manifest.jsonl`` (member, size, sha256 of every other member).

The manifest comes last so a backup reads each stored file once (hashing while it copies); a restore
therefore reads the archive twice: once to check every member against the manifest before anything is
changed, once to apply it. Both passes stream (tar ``r|``/``w|``): no member is held in memory whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "assay-backup"
VERSION = 1
PREFIX = "assay-backup/"
FORMAT_MEMBER = PREFIX + "format.json"
ROWS_MEMBER = PREFIX + "rows.jsonl"
FILES_PREFIX = PREFIX + "files/"
MANIFEST_MEMBER = PREFIX + "manifest.jsonl"
MAX_FORMAT_BYTES = 1 << 20  # format.json lists migrations and counts: never near this
CHUNK = 1 << 20

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why, for the operator."""


def quiet(_: str) -> None:
    """The progress callback that says nothing."""


class HashingReader:
    """A read-only stream that hashes what passes through it and refuses to end early."""

    def __init__(self, raw: IO[bytes], size: int, what: str) -> None:
        self.raw, self.size, self.what = raw, size, what
        self.sha256 = hashlib.sha256()
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.read_bytes += len(data)
        if (not data and n != 0 and self.read_bytes < self.size) or self.read_bytes > self.size:
            raise BackupError(f"{self.what} changed size while it was read ({self.read_bytes} of {self.size} bytes)")
        return data

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def file_member(storage_name: str) -> str:
    return FILES_PREFIX + storage_name


def storage_name(member: str) -> str:
    """The storage name a ``files/`` member restores to; refuses names that could leave the storage root."""
    name = member[len(FILES_PREFIX) :]
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or "\x00" in name:
        raise BackupError(f"the archive names a file {name!r} that cannot be a storage name: refused")
    return name


class ArchiveWriter:
    """Writes the tar to ``<path>.partial`` and renames it into place on ``close``, so a backup that fails
    leaves no archive that looks whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.tar = tarfile.open(self.partial, "w|", format=tarfile.PAX_FORMAT)
        self.manifest = tempfile.TemporaryFile()

    def add_stream(self, member: str, fh: IO[bytes], size: int, mtime: float = 0) -> str:
        info = tarfile.TarInfo(member)
        info.size, info.mtime, info.mode = size, mtime, 0o644
        reader = HashingReader(fh, size, member)
        self.tar.addfile(info, reader)  # reads exactly ``size`` bytes; a shorter file raises
        digest = reader.hexdigest()
        line = {"member": member, "size": size, "sha256": digest}
        self.manifest.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        return digest

    def add_path(self, member: str, path: Path) -> str:
        with open(path, "rb") as fh:
            return self.add_stream(member, fh, os.fstat(fh.fileno()).st_size)

    def add_bytes(self, member: str, data: bytes) -> str:
        import io

        return self.add_stream(member, io.BytesIO(data), len(data))

    def close(self) -> None:
        size = self.manifest.tell()
        self.manifest.seek(0)
        info = tarfile.TarInfo(MANIFEST_MEMBER)
        info.size, info.mode = size, 0o644
        self.tar.addfile(info, self.manifest)
        self.tar.close()
        self.manifest.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            self.tar.close()
        except Exception:  # noqa: BLE001  (already failing: the partial file goes either way)
            pass
        self.manifest.close()
        self.partial.unlink(missing_ok=True)


@dataclass
class Checked:
    """What the first pass found: the format document and each member's (sha256, size), all as the manifest says."""

    format: dict[str, Any]
    members: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(1 for m in self.members if m.startswith(FILES_PREFIX))

    @property
    def file_bytes(self) -> int:
        return sum(size for m, (_, size) in self.members.items() if m.startswith(FILES_PREFIX))


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except tarfile.TarError as exc:
        raise BackupError(f"the archive is damaged (not a readable tar: {exc}): refused") from None


def open_archive(path: Path) -> tarfile.TarFile:
    if not path.is_file():
        raise BackupError(f"no archive at {path}")
    try:
        return tarfile.open(path, "r|")
    except tarfile.TarError as exc:
        raise BackupError(f"{path} is not a backup archive (not a readable tar: {exc})") from None


def check(path: Path, progress: Progress = quiet) -> Checked:
    """Read the whole archive once and compare every member with the manifest; refuse anything off."""
    try:
        return _check(path, progress)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"the archive is damaged ({exc}): refused, nothing was restored") from None


def _check(path: Path, progress: Progress) -> Checked:
    seen: dict[str, tuple[str, int]] = {}
    document: dict[str, Any] | None = None
    manifest: dict[str, tuple[str, int]] | None = None
    with open_archive(path) as tar:
        for member in _members(tar):
            if manifest is not None:
                raise BackupError(f"the archive has a member after its manifest ({member.name!r}): refused")
            if not member.isfile() or not member.name.startswith(PREFIX) or member.name in seen:
                raise BackupError(f"the archive holds an unexpected member {member.name!r}: refused")
            if member.name.startswith(FILES_PREFIX):
                storage_name(member.name)
            fh = tar.extractfile(member)
            assert fh is not None
            if member.name == MANIFEST_MEMBER:
                manifest = _read_manifest(fh)
                continue
            if member.name == FORMAT_MEMBER:
                if member.size > MAX_FORMAT_BYTES:
                    raise BackupError("the archive's format.json is implausibly large: refused")
                data = fh.read()
                seen[member.name] = (hashlib.sha256(data).hexdigest(), len(data))
                document = _parse_format(data)
                continue
            reader = HashingReader(fh, member.size, member.name)
            while reader.read(CHUNK):
                pass
            seen[member.name] = (reader.hexdigest(), reader.read_bytes)
            if len(seen) % 1000 == 0:
                progress(f"checked {len(seen)} members")
    if manifest is None:
        raise BackupError("the archive has no manifest (cut short?): refused")
    if document is None or ROWS_MEMBER not in seen:
        raise BackupError("the archive lacks format.json or rows.jsonl: refused")
    if set(manifest) != set(seen):
        missing = sorted(set(manifest) - set(seen))[:3]
        extra = sorted(set(seen) - set(manifest))[:3]
        raise BackupError(
            f"the archive's members do not match its manifest (missing {missing}, unlisted {extra}): refused"
        )
    for name, (digest, size) in seen.items():
        if manifest[name] != (digest, size):
            raise BackupError(
                f"{name} is corrupted: its sha256 is {digest} ({size} bytes), the manifest says"
                f" {manifest[name][0]} ({manifest[name][1]} bytes): refused, nothing was restored"
            )
    return Checked(document, seen)


def _read_manifest(fh: IO[bytes]) -> dict[str, tuple[str, int]]:
    entries: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(fh, 1):
        try:
            row = json.loads(line)
            entries[str(row["member"])] = (str(row["sha256"]), int(row["size"]))
        except (ValueError, KeyError, TypeError):
            raise BackupError(f"the archive's manifest is damaged (line {number}): refused") from None
    return entries


def _parse_format(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        raise BackupError("the archive's format.json is not JSON: refused") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError("this is not an Assay backup (format.json does not say assay-backup): refused")
    if document.get("version") != VERSION:
        raise BackupError(
            f"this backup has format version {document.get('version')!r}; this Assay reads version {VERSION}: refused"
        )
    return document
