"""Container-image submissions: a tarball made with ``docker save`` (optionally gzipped).

Checked before it is stored, so a participant who uploads the wrong file hears so at once instead of
after a queue wait. Only the archive's index is read (``manifest.json``): nothing is extracted.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import IO

MAX_MANIFEST_BYTES = 1024 * 1024


class ImageError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    tags: list[str]
    config: str  # the image config's path in the archive; its name is the image id's digest


def inspect_image_tarball(file: IO[bytes]) -> ImageInfo:
    """The tags and config of a ``docker save`` archive, or :class:`ImageError` saying what is wrong."""
    start = file.tell()
    try:
        with tarfile.open(fileobj=file, mode="r:*") as tar:
            member = next((m for m in tar if m.name.lstrip("./") == "manifest.json"), None)
            if member is None or not member.isfile():
                raise ImageError("this archive has no manifest.json: make it with `docker save IMAGE -o image.tar`")
            if member.size > MAX_MANIFEST_BYTES:
                raise ImageError("manifest.json is too large to be a docker save manifest")
            handle = tar.extractfile(member)
            manifest = json.loads(handle.read() if handle else b"")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"not a docker save archive ({exc.__class__.__name__})") from None
    finally:
        file.seek(start)
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise ImageError("the archive must hold exactly one image (docker save one image at a time)")
    entry = manifest[0]
    config = entry.get("Config")
    if not isinstance(config, str) or not config:
        raise ImageError("manifest.json names no image config")
    tags = [t for t in entry.get("RepoTags") or [] if isinstance(t, str)]
    return ImageInfo(tags=tags, config=config)
