"""Files by content hash: a job's submission, evaluation script and annotation are fetched once.

``<root>/<sha256>/<name>``, one folder (an *entry*) per hash. Several jobs use the cache at once (a worker
with slots runs them on threads; a restarted in-process worker, or two ``assay worker`` in one folder,
share it from other :class:`FileCache` objects or processes), and the size bound evicts entries. So:

* A job *holds* the entries it fetched (:meth:`FileCache.hold`) until it ends: a held entry is never
  evicted or discarded under it, whoever wants room. Holding is a shared ``flock`` on the entry's
  ``.pin`` file (seen by other processes and other ``FileCache`` objects) plus a count per process (for
  a file system whose ``flock`` does not tell one process's threads apart, e.g. NFS). Eviction takes
  that lock exclusively without waiting (a held entry is passed by), renames the entry away, then
  deletes it; a holder checks, once locked, that its entry is still the one at the path (an eviction may
  have renamed it meanwhile) and otherwise starts a new one. A reader with a file open keeps its bytes.
* Held entries can push the cache over ``max_bytes``: by at most the files of the jobs in progress (in
  every process using the folder), since only those are held; an incoming file is written even when the
  held ones leave it no room (the job needs it), and the bound holds again once they end.
* A file is used only once this process has seen its bytes hash right: written here after the hash was
  checked (downloads and carried files land in a ``.part-`` file renamed into place), or, for a file
  found on disk (another process's, or from before a crash that may have left a renamed file short),
  hashed once on first use; a bad one is removed and fetched again. A ``.part-`` file that has not
  been written for :data:`STALE_PART_SECONDS` (a worker killed mid-download) is deleted by eviction.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Protocol

log = logging.getLogger("assay.worker")

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_SHA = re.compile(r"[0-9a-f]{64}")
PIN = ".pin"  # the file an entry's holders lock (a file name never starts with '.': see path_for)
PART = ".part-"  # a download or carried file being written, renamed into place once its hash is right
TRASH = ".evicted-"  # an entry renamed away by eviction, being deleted
STALE_PART_SECONDS = 3600.0  # a download writes every second or fails (timeouts); an hour idle: its worker died
_PIN_TRIES = 100  # each retry means an eviction took the entry between two system calls: never 100 in a row

# Per process, whichever FileCache object: entries held by this process's jobs (by resolved path, a str: a
# Path's hashing costs more than the rest of a cache hit), entries
# discarded while held (removed when the last hold ends), and files this process has seen hash right.
_lock = threading.Lock()
_held: Counter[str] = Counter()
_doomed: set[str] = set()
_verified: dict[str, dict[str, tuple[int, int, int, int]]] = {}


class Downloader(Protocol):
    def download(self, sha256: str, target: Path) -> Path: ...


def _write_inline(content: str, sha256: str, target: Path) -> bool:
    """A small file the claim carried (base64), written if its bytes hash right; False: download it."""
    try:
        data = base64.b64decode(content, validate=True)
    except (ValueError, TypeError):
        return False
    if hashlib.sha256(data).hexdigest() != sha256:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=PART)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


class FileCache:
    """``<root>/<sha256>/<name>``; entries beyond ``max_bytes`` are evicted oldest-used first, never a held one."""

    def __init__(self, root: Path, max_bytes: int = 20 * 1024**3) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._real = str(root.resolve())  # the per-process registries' key, however the root is spelt
        self._room = threading.Lock()  # one eviction pass at a time in this object

    def path_for(self, sha256: str, name: str) -> Path:
        safe = _SAFE.sub("_", name.rsplit("/", 1)[-1]).lstrip(".") or "file"
        return self.root / sha256 / safe

    def hold(self) -> Hold:
        """What one job fetches through: its entries stay until :meth:`Hold.release` (or the ``with`` ends)."""
        return Hold(self)

    def fetch(self, client: Downloader, info: dict) -> Path:
        """A file held only while it is fetched: for a caller that reads it at once, with nothing else
        making room meanwhile. A job fetches through :meth:`hold` instead."""
        with self.hold() as held:
            return held.fetch(client, info)

    def discard(self, info: dict | None) -> None:
        """Forget a one-use file (a participant's submission, maybe a multi-gigabyte image tarball) at once,
        rather than let it push the challenge's reusable script and annotations out of the cache. A held
        entry goes when its last hold in this process ends; one another process holds is left to eviction."""
        sha = (info or {}).get("sha256") or ""
        if not _SHA.fullmatch(sha):
            return
        real = f"{self._real}/{sha}"
        with _lock:
            if _held[real]:
                _doomed.add(real)
                return
        self._evict(sha)

    def _make_room(self, incoming: int) -> None:
        """Evict oldest-used entries until ``incoming`` bytes fit; held entries stay (and still count). Other
        slots' threads write (``.part-`` files renamed into place) and discard entries meanwhile, so anything
        may vanish while it is measured. Only entries named by a hash are evicted: ``local`` (the host's own
        script, zipped at start) is kept for the worker's life."""
        with self._room:
            sizes: dict[str, tuple[float, int]] = {}
            kept = 0
            for entry in self.root.iterdir():
                name = entry.name
                if name.startswith(TRASH):  # an eviction that died before its delete ended
                    shutil.rmtree(entry, ignore_errors=True)
                    continue
                try:
                    used = entry.stat().st_mtime
                    size = _tree_size(entry)
                except FileNotFoundError:
                    continue
                if _SHA.fullmatch(name):
                    sizes[name] = (used, size)
                else:
                    kept += size
            total = kept + sum(size for _, size in sizes.values())
            for sha, (_, size) in sorted(sizes.items(), key=lambda item: item[1][0]):
                if total + incoming <= self.max_bytes:
                    break
                if self._evict(sha):
                    total -= size

    def _evict(self, sha: str) -> bool:
        """Remove an entry nobody holds: renamed away under its exclusive lock, then deleted. False: held."""
        entry, real = self.root / sha, f"{self._real}/{sha}"
        trash = self.root / f"{TRASH}{uuid.uuid4().hex}"
        with _lock:  # a thread of this process holds only after counting itself here
            if _held[real]:
                return False
            try:
                fd = os.open(entry / PIN, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                return True  # gone already
            except NotADirectoryError:
                return False  # not an entry this cache made: left alone
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # another process (or FileCache object) holds it
                try:
                    os.rename(entry, trash)
                except FileNotFoundError:
                    return True
            finally:
                os.close(fd)
            _verified.pop(real, None)
            _doomed.discard(real)
        shutil.rmtree(trash, ignore_errors=True)
        return True


class Hold:
    """The cache entries one job fetched, kept from eviction and discarding until :meth:`release`."""

    def __init__(self, cache: FileCache) -> None:
        self.cache = cache
        self._pins: dict[str, int] = {}  # sha → the locked .pin file's descriptor
        self._mutex = threading.Lock()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def fetch(self, client: Downloader, info: dict) -> Path:
        """The file, from the cache when its bytes are known right, else carried by the claim or downloaded."""
        sha = info["sha256"]
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise ValueError(f"not a sha256: {sha!r}")
        cache = self.cache
        target = cache.path_for(sha, info.get("name") or "file")
        real = f"{cache._real}/{sha}"
        self._pin(sha, real)
        if _usable(target, real, sha, info.get("size")):
            with contextlib.suppress(FileNotFoundError):
                target.parent.touch()  # used now: evicted last
            return target
        cache._make_room(int(info.get("size") or 0))
        if not (info.get("content") is not None and _write_inline(info["content"], sha, target)):
            client.download(sha, target)  # the client checks the hash before the file appears there
        _remember(target, real)
        return target

    def release(self) -> None:
        """The job ended: its entries may be evicted again, and those discarded meanwhile go now."""
        with self._mutex:
            pins, self._pins = self._pins, {}
        doomed: list[str] = []
        for sha, fd in pins.items():
            real = f"{self.cache._real}/{sha}"
            with _lock:
                _held[real] -= 1
                if _held[real] <= 0:
                    del _held[real]
                    if real in _doomed:
                        _doomed.discard(real)
                        doomed.append(sha)
            os.close(fd)
        for sha in doomed:
            self.cache._evict(sha)

    def _pin(self, sha: str, real: str) -> None:
        """Lock the entry (created if need be) shared, once per job, and check it is still the one at its path."""
        with self._mutex:
            if sha in self._pins:
                return
            with _lock:
                _held[real] += 1  # first: an eviction in this process now passes the entry by
            try:
                self._pins[sha] = _locked_entry(os.path.join(self.cache.root, sha))
            except BaseException:
                with _lock:
                    _held[real] -= 1
                    if _held[real] <= 0:
                        del _held[real]
                raise


def _locked_entry(entry: str) -> int:
    """The descriptor of ``entry``'s ``.pin``, locked shared, once it is the entry's current one."""
    pin = os.path.join(entry, PIN)
    for _ in range(_PIN_TRIES):
        try:
            fd = os.open(pin, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by the evaluators this worker starts
        except FileNotFoundError:
            os.makedirs(entry, exist_ok=True)  # a new entry (or one evicted just now): try again in it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # an eviction holds it exclusively for one rename at most
            mine = os.fstat(fd)
            with contextlib.suppress(FileNotFoundError):
                now = os.stat(pin)
                if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                    return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # evicted while we waited for the lock: take the new entry
    raise OSError(errno.EAGAIN, f"the cache entry {entry} was evicted {_PIN_TRIES} times while being held")


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _remember(target: Path, real: str) -> None:
    """``target``'s bytes hashed right (checked as they were written): used without hashing again."""
    st = os.stat(target)
    with _lock:
        _verified.setdefault(real, {})[target.name] = _stamp(st)


def _usable(target: Path, real: str, sha: str, size: object) -> bool:
    """Whether the file at ``target`` holds the bytes of ``sha``: known so (this process wrote or hashed this
    very file), or hashed now. A wrong one is removed (a reader with it open keeps its bytes)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False
    with _lock:
        if (_verified.get(real) or {}).get(target.name) == _stamp(st):
            return True
    right = (size is None or st.st_size == int(size)) and _hash(target) == sha
    if right:
        with _lock:
            _verified.setdefault(real, {})[target.name] = _stamp(st)
        return True
    log.warning("cached file %s does not hash to its name (cut short or damaged); fetching it again", target)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    return False


def _hash(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1024 * 1024):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _tree_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder``, not following links; files gone before they are measured
    count nothing (a download in progress was renamed, or another job discarded its entry). A ``.part-``
    file idle for :data:`STALE_PART_SECONDS` is a dead worker's download: deleted, not counted."""
    total = 0
    stale = time.time() - STALE_PART_SECONDS
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if name.startswith(PART) and st.st_mtime < stale:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            total += st.st_size
    return total
