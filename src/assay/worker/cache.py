"""Files by content hash: a job's submission, evaluation script and annotation are fetched once."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from .client import WorkerClient

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _write_inline(content: str, sha256: str, target: Path) -> bool:
    """A small file the claim carried (base64), written if its bytes hash right; False: download it."""
    try:
        data = base64.b64decode(content, validate=True)
    except (ValueError, TypeError):
        return False
    if hashlib.sha256(data).hexdigest() != sha256:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


class FileCache:
    """``<root>/<sha256>/<name>``; entries beyond ``max_bytes`` are evicted oldest-used first."""

    def __init__(self, root: Path, max_bytes: int = 20 * 1024**3) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._room = threading.Lock()  # one eviction at a time: a worker with slots fetches on several threads

    def path_for(self, sha256: str, name: str) -> Path:
        safe = _SAFE.sub("_", name.rsplit("/", 1)[-1]).lstrip(".") or "file"
        return self.root / sha256 / safe

    def fetch(self, client: WorkerClient, info: dict) -> Path:
        sha = info["sha256"]
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValueError(f"not a sha256: {sha!r}")
        target = self.path_for(sha, info.get("name") or "file")
        if target.exists():
            target.parent.touch()
            return target
        self._make_room(int(info.get("size") or 0))
        if info.get("content") is not None and _write_inline(info["content"], sha, target):
            return target
        return client.download(sha, target)

    def discard(self, info: dict | None) -> None:
        """Forget a one-use file (a participant's submission, maybe a multi-gigabyte image tarball) at once,
        rather than let it push the challenge's reusable script and annotations out of the cache."""
        sha = (info or {}).get("sha256") or ""
        if re.fullmatch(r"[0-9a-f]{64}", sha):
            shutil.rmtree(self.root / sha, ignore_errors=True)

    def _make_room(self, incoming: int) -> None:
        """Evict oldest-used entries until ``incoming`` bytes fit. Other slots' threads write (``.part-`` files
        renamed into place) and discard entries meanwhile, so anything may vanish while it is measured."""
        with self._room:
            sizes: dict[Path, tuple[float, int]] = {}
            for entry in self.root.iterdir():
                try:
                    sizes[entry] = (entry.stat().st_mtime, _tree_size(entry))
                except FileNotFoundError:
                    continue
            total = sum(size for _, size in sizes.values())
            for entry, (_, size) in sorted(sizes.items(), key=lambda item: item[1][0]):
                if total + incoming <= self.max_bytes:
                    break
                shutil.rmtree(entry, ignore_errors=True)
                total -= size


def _tree_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder``, not following links; files gone before they are measured
    count nothing (a download in progress was renamed, or another job discarded its entry)."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:
                continue
    return total
