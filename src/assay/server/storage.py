"""File writes named by content hash that can be undone when the surrounding transaction fails.

Files land at ``<folder>/<sha256>/<name>`` (rows also record the hash). Every write creates its
own file — storage picks a fresh name atomically when one exists — so undoing a refused write can
never delete a file another request relies on (sharing by name would: a concurrent writer that
found the file present would lose it to this one's rollback). A caller that already holds the
same bytes passes its current name as ``current`` and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable
from typing import IO

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.core.files.utils import validate_file_name
from django.utils._os import safe_makedirs


class ContentWriter:
    """Saves files under content-addressed names; remembers what it created, to undo it."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def save(
        self,
        folder: str,
        filename: str,
        data: bytes | None = None,
        opener: Callable[[], IO[bytes]] | None = None,
        current: str = "",
    ) -> tuple[str, str, int]:
        """Store ``data`` (or the stream ``opener()`` gives, read twice) and return (name, sha256, size)."""
        if data is not None:
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
        elif opener is not None:
            digest, size = hash_stream(opener())
        else:
            raise ValueError("save() needs data or an opener")
        if _same(current, digest):
            return current, digest, size
        safe_name = safe_file_name(filename)
        name = f"{folder}/{digest}/{safe_name}"
        if data is not None:
            name = _write_new(name, data) or default_storage.save(name, ContentFile(data))
        else:
            with opener() as fh:  # type: ignore[misc]
                name = default_storage.save(name, File(fh, name=safe_name))
        self.created.append(name)
        return name, digest, size

    def save_seekable(
        self, folder: str, filename: str, fh: IO[bytes], known: tuple[str, int] | None = None
    ) -> tuple[str, str, int]:
        """Store an open, seekable file (an upload, say) without closing it; read twice, hash then copy.

        A caller that has already hashed these bytes passes ``known`` = (sha256, size): one read, the copy.
        """
        if known is None:
            fh.seek(0)
            known = hash_stream_open(fh)
        hexdigest, size = known
        safe_name = safe_file_name(filename)
        fh.seek(0)
        name = default_storage.save(f"{folder}/{hexdigest}/{safe_name}", File(fh, name=safe_name))
        self.created.append(name)
        return name, hexdigest, size

    def rollback(self) -> None:
        for name in self.created:
            try:
                default_storage.delete(name)
            except OSError:
                pass
        self.created.clear()


def _write_new(name: str, data: bytes) -> str | None:
    """``data`` as a new local file named ``name``, as ``FileSystemStorage.save`` writes one where the name is
    free (same directories, file mode, group); None when it is not plain local storage or the name is taken
    (the caller then lets storage pick a fresh name). Why: a result writes three files, and storage's ``save``
    checks and rebuilds the name (exists, ``get_available_name``, path joins) before the one ``O_EXCL`` open
    that decides anyway: a third of ``complete()``'s CPU went to those three writes."""
    storage = storages["default"]
    if type(storage) is not FileSystemStorage or storage._allow_overwrite:
        return None
    validate_file_name(name, allow_relative_path=True)  # no absolute path, no ".." part
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    if storage.OS_OPEN_FLAGS != flags or posixpath.normpath(name) != name:
        return None
    path = os.path.join(storage.location, name)
    try:
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:  # a new folder (each content hash has one): made as storage makes it
            mode = storage.directory_permissions_mode
            folder = os.path.dirname(path)
            if mode is not None:
                safe_makedirs(folder, mode, exist_ok=True)
            else:
                os.makedirs(folder, exist_ok=True)
            fd = os.open(path, flags, 0o666)
    except FileExistsError:
        return None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if storage.file_permissions_mode is not None:
                os.fchmod(fh.fileno(), storage.file_permissions_mode)
            group = os.stat(storage.location).st_gid
            if os.fstat(fh.fileno()).st_gid != group:
                try:
                    os.fchown(fh.fileno(), -1, group)
                except PermissionError:
                    pass
    except BaseException:
        os.unlink(path)
        raise
    return name


def presigned_get(name: str, filename: str = "", content_type: str = "", *, attachment: bool = True) -> str | None:
    """A short-lived URL from which the client fetches the stored file straight from the object store, or
    None with local storage (the server then streams it). Call it only after the caller's own rule allowed
    the read: whoever holds the URL may read the file until it expires."""
    presign = getattr(default_storage, "presigned", None)
    if presign is None or not name:
        return None
    return presign(name, filename=filename, content_type=content_type, attachment=attachment)


def _same(current: str, digest: str) -> bool:
    """Does the stored name ``current`` (``<folder>/<sha256>/<name>``) hold these bytes, and exist?"""
    parts = current.split("/")
    return len(parts) >= 3 and parts[-2] == digest and default_storage.exists(current)


def safe_file_name(filename: str) -> str:
    """The last path part of a client-given name: safe characters only, no leading dot, ≤ 100 characters."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(filename.replace("\\", "/")))
    return base.lstrip(".")[-100:] or "file"


def hash_stream(fh: IO[bytes]) -> tuple[str, int]:
    with fh:
        return hash_stream_open(fh)


def hash_stream_open(fh: IO[bytes]) -> tuple[str, int]:
    """(sha256, size) of the rest of ``fh``, which stays open."""
    digest = hashlib.sha256()
    size = 0
    while chunk := fh.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
