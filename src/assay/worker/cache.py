"""Files by content hash: a job's submission, evaluation script and annotation are fetched once."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
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
        entries = [p for p in self.root.iterdir() if p.is_dir()]
        sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in entries}
        total = sum(sizes.values())
        for entry in sorted(entries, key=lambda p: p.stat().st_mtime):
            if total + incoming <= self.max_bytes:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total -= sizes[entry]
