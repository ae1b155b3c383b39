"""Content-addressed file writes that can be undone when the surrounding transaction fails.

Files land at ``<folder>/<sha256>/<name>``: the same bytes are stored once, a row records the hash
it expects, and a writer remembers which files it created so a failed import or result write
leaves storage exactly as it found it.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from typing import IO

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage


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
    ) -> tuple[str, str, int]:
        """Store ``data`` (or the stream ``opener()`` gives, read twice) and return (name, sha256, size)."""
        if data is not None:
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
        elif opener is not None:
            digest, size = hash_stream(opener())
        else:
            raise ValueError("save() needs data or an opener")
        safe_name = posixpath.basename(filename.replace("\\", "/")).replace(" ", "_")[:100] or "file"
        name = f"{folder}/{digest}/{safe_name}"
        if not default_storage.exists(name):
            if data is not None:
                stored = default_storage.save(name, ContentFile(data))
            else:
                with opener() as fh:  # type: ignore[misc]
                    stored = default_storage.save(name, File(fh, name=safe_name))
            self.created.append(stored)
            name = stored
        return name, digest, size

    def rollback(self) -> None:
        for name in self.created:
            try:
                default_storage.delete(name)
            except OSError:
                pass
        self.created.clear()


def hash_stream(fh: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
