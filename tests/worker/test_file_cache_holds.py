"""The worker's file cache while several jobs use it: what a job holds is never evicted or discarded under
it (threads of one worker, other processes on one folder), eviction leaves the host's local script alone,
and a file cut short or damaged on disk (a worker killed mid-download, a crash) is fetched again, never used.

Synchronised by events and pipes only; a wait's timeout is there to fail a broken run, never to order it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from assay.worker import cache as cache_module
from assay.worker.cache import PART, STALE_PART_SECONDS, FileCache
from assay.worker.loop import LocalFiles, Worker

WAIT = 30.0  # generous: only a broken run ever waits this long


class Client:
    """Serves downloads from sha256 → bytes, written the way the real client writes them (renamed into place)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []

    def add(self, data: bytes, name: str) -> dict[str, Any]:
        sha = hashlib.sha256(data).hexdigest()
        self.files[sha] = data
        return {"sha256": sha, "size": len(data), "name": name}

    def download(self, sha256: str, target: Path) -> Path:
        self.downloads.append(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{PART}test")
        part.write_bytes(self.files[sha256])
        os.replace(part, target)
        return target


class ReadingPool:
    """Scores a job by reading its three files; the job named ``blocked`` waits (after ``started``) for ``go``."""

    def __init__(self, blocked: int) -> None:
        self.blocked = blocked
        self.started = threading.Event()
        self.go = threading.Event()

    def evaluate(self, job: Any, handle: Any = None) -> dict[str, bytes]:
        if job.submission_metadata["id"] == self.blocked:
            self.started.set()
            assert self.go.wait(WAIT)
        return {
            "submission": Path(job.submission_file).read_bytes(),
            "annotation": Path(job.annotation_file).read_bytes(),
            "script": Path(job.script_zip).read_bytes(),
        }

    def close(self) -> None:
        pass


def _script() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("__init__.py", "def evaluate(*a, **k):\n    return {'result': []}\n")
    return buffer.getvalue()


def _job(sid: int, client: Client, submission: bytes, annotation: bytes, script: bytes) -> dict[str, Any]:
    return {
        "submission_id": sid,
        "attempt": 1,
        "phase": {"codename": "dev"},
        "submission_file": client.add(submission, "sub.json"),
        "annotation": client.add(annotation, "ann.json"),
        "evaluation_script": client.add(script, "evaluation_script.zip"),
        "submission_metadata": {"id": sid},
        "limits": {},
    }


def _cache_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_a_running_jobs_files_survive_another_slot_making_room(tmp_path):
    """The bug: with slots, job 2's large submission made room by evicting the oldest-used entries, which
    were job 1's files while job 1 was still evaluating; job 1 then found its submission gone."""
    client = Client()
    annotation, script = b'{"labels": [1, 0, 1]}', _script()
    first = _job(1, client, b'{"preds": [1, 1, 1]}', annotation, script)
    pool = ReadingPool(blocked=1)
    worker = Worker(client, tmp_path / "w", pool=pool)  # type: ignore[arg-type]
    worker.cache.max_bytes = 1000
    big = b"x" * worker.cache.max_bytes  # needs the whole bound: everything unheld must go
    second = _job(2, client, big, annotation, script)
    seen: dict[str, Any] = {}

    def run_first() -> None:
        try:
            seen["value"] = worker._fetch_and_evaluate(first)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            seen["error"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    assert pool.started.wait(WAIT)
    assert worker._fetch_and_evaluate(second)["submission"] == big  # the other slot makes room meanwhile
    # over the bound by no more than what the jobs in progress hold (job 1's three files; job 2 ended)
    held = sum(first[key]["size"] for key in ("submission_file", "annotation", "evaluation_script"))
    assert _cache_bytes(worker.cache.root) <= worker.cache.max_bytes + held
    pool.go.set()
    thread.join(WAIT)
    assert "error" not in seen, seen.get("error")
    assert seen["value"] == {"submission": b'{"preds": [1, 1, 1]}', "annotation": annotation, "script": script}
    assert len(client.downloads) == 4  # job 2 reused the script and annotation: only its submission came

    # Job 1 ended: its entries are evictable again, so the bound holds once more.
    worker.cache.fetch(client, client.add(b"y" * worker.cache.max_bytes, "next.json"))
    assert not (worker.cache.root / first["submission_file"]["sha256"]).exists()
    assert _cache_bytes(worker.cache.root) <= worker.cache.max_bytes


def test_a_discarded_entry_in_use_goes_when_its_last_hold_ends(tmp_path):
    """A batched worker discards an ended job's submission; another job holding the same file keeps it."""
    client = Client()
    cache = FileCache(tmp_path / "cache")
    info = client.add(b"the same predictions, submitted twice", "sub.json")
    with cache.hold() as one, cache.hold() as two:
        path = one.fetch(client, info)
        assert two.fetch(client, info) == path
        one.release()
        cache.discard(info)
        assert path.read_bytes() == b"the same predictions, submitted twice"  # job two still reads it
    assert not path.parent.exists()  # gone with the last hold
    cache.discard(info)  # discarding what is gone is nothing
    assert not [entry for entry in cache_module._doomed if entry.startswith(str(tmp_path.resolve()))]


_HOLDER = textwrap.dedent(
    """
    import base64, hashlib, sys
    from pathlib import Path
    from assay.worker.cache import FileCache

    data = b"held by another worker process"
    info = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "name": "held.bin",
            "content": base64.b64encode(data).decode()}
    with FileCache(Path(sys.argv[1])).hold() as held:
        path = held.fetch(None, info)
        print(path, flush=True)
        sys.stdin.readline()  # the test says when to let go
    """
)


def test_an_entry_another_process_holds_is_not_evicted_until_it_lets_go(tmp_path):
    """Two workers on one folder (``assay worker`` twice with the same --workdir; a restarted embedded worker):
    one's eviction must not delete the file the other's job uses. Holding is a lock the other process sees."""
    root = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        held = Path(child.stdout.readline().strip())  # type: ignore[union-attr]
        assert held.read_bytes() == b"held by another worker process"
        cache = FileCache(root, max_bytes=0)
        loose = cache.fetch(Client(), _carried(b"nobody holds this one"))
        cache._make_room(1)
        assert held.exists() and not loose.exists()
        child.stdin.write("\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        assert child.wait(WAIT) == 0
        cache._make_room(1)
        assert not held.parent.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _carried(data: bytes, name: str = "carried.bin") -> dict[str, Any]:
    """A file the claim carries (no download needed)."""
    sha = hashlib.sha256(data).hexdigest()
    return {"sha256": sha, "size": len(data), "name": name, "content": base64.b64encode(data).decode()}


def test_an_entry_evicted_while_a_job_waits_for_its_lock_is_fetched_again(tmp_path, monkeypatch):
    """The holder's lock and another process's eviction race: the evictor renamed the entry away between the
    holder's open and its lock. The holder must notice (the entry at the path is a new one) and fetch anew."""
    client = Client()
    info = client.add(b"annotation bytes", "ann.json")
    cache = FileCache(tmp_path / "cache")
    first = cache.fetch(client, info)
    real_flock = cache_module.fcntl.flock
    raced: list[Path] = []

    def evicted_first(fd: int, operation: int) -> None:
        if operation == cache_module.fcntl.LOCK_SH and not raced:
            trash = tmp_path / "cache" / ".evicted-by-another-process"
            os.rename(first.parent, trash)  # what the other process's eviction does under its lock
            raced.append(trash)
        real_flock(fd, operation)

    monkeypatch.setattr(cache_module.fcntl, "flock", evicted_first)
    with cache.hold() as held:
        path = held.fetch(client, info)
        assert raced and path == first and path.read_bytes() == b"annotation bytes"
    assert len(client.downloads) == 2  # fetched again into the new entry, not read from the old one


def test_a_file_cut_short_or_damaged_on_disk_is_fetched_again_never_used(tmp_path, caplog):
    """A machine that crashed after renaming a download into place may leave it short; a disk may damage it.
    A file this process did not write is hashed on its first use; a wrong one is replaced."""
    client = Client()
    cache = FileCache(tmp_path / "cache")
    good = b'{"labels": [1, 0, 1, 1]}'
    short, damaged = client.add(good, "short.json"), client.add(good, "damaged.json")
    cache.path_for(short["sha256"], "short.json").parent.mkdir(parents=True)
    cache.path_for(short["sha256"], "short.json").write_bytes(good[:5])
    cache.path_for(damaged["sha256"], "damaged.json").write_bytes(good.replace(b"1", b"7", 1))  # same size
    with caplog.at_level(logging.WARNING, logger="assay.worker"):
        assert cache.fetch(client, short).read_bytes() == good
        assert cache.fetch(client, damaged).read_bytes() == good
    assert len(client.downloads) == 2 and "does not hash to its name" in caplog.text
    assert cache.fetch(client, short).read_bytes() == good and len(client.downloads) == 2  # now right: kept


def test_a_file_found_on_disk_is_hashed_once_and_a_file_written_here_never(tmp_path, monkeypatch):
    """The check costs a read of the file once per process (another worker's download, or the last run's),
    not once per job: an annotation of gigabytes is used by every job of its phase."""
    client = Client()
    data = b"written by another worker process"
    theirs = client.add(data, "theirs.bin")
    cache = FileCache(tmp_path / "cache")
    found = cache.path_for(theirs["sha256"], "theirs.bin")
    found.parent.mkdir(parents=True)
    found.write_bytes(data)
    hashed: list[Path] = []
    real_hash = cache_module._hash
    monkeypatch.setattr(cache_module, "_hash", lambda path: hashed.append(path) or real_hash(path))
    for _ in range(3):
        assert cache.fetch(client, theirs).read_bytes() == data
    mine = client.add(b"downloaded here", "mine.bin")
    for _ in range(3):
        assert cache.fetch(client, mine).read_bytes() == b"downloaded here"
    assert len(hashed) == 1 and client.downloads == [mine["sha256"]]


def test_a_killed_downloads_part_file_is_never_used_and_eviction_clears_it(tmp_path):
    """A worker killed mid-download leaves a ``.part-`` file and no file at the entry's name: the next fetch
    downloads (it never looks at the part), and making room deletes parts nobody has written for an hour."""
    client = Client()
    cache = FileCache(tmp_path / "cache")
    info = client.add(b"a large image tarball, in full", "image.tar")
    entry = cache.path_for(info["sha256"], "image.tar").parent
    entry.mkdir(parents=True)
    dead = entry / f"{PART}killed"
    dead.write_bytes(b"a large ima")
    long_ago = time.time() - STALE_PART_SECONDS - 60
    os.utime(dead, (long_ago, long_ago))
    live = entry / f"{PART}writing"  # another process's download in progress: written just now
    live.write_bytes(b"a large")
    assert cache.fetch(client, info).read_bytes() == b"a large image tarball, in full"
    cache._make_room(0)
    assert not dead.exists() and live.exists()


def test_making_room_never_evicts_the_hosts_local_script(tmp_path):
    """``--evaluation-script FOLDER`` is zipped once at start into ``cache/local``; it used to be an entry
    like any other, evicted first (it is never touched), and every later job failed to read its script."""
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "__init__.py").write_text("def evaluate(*a, **k):\n    return {'result': []}\n")
    client = Client()
    worker = Worker(client, tmp_path / "w", pool=ReadingPool(blocked=0), local=LocalFiles(evaluation_script=folder))  # type: ignore[arg-type]
    assert worker.local_script is not None and worker.local_script.is_relative_to(worker.cache.root)
    worker.cache.max_bytes = 1
    job = _job(3, client, b"x" * 100, b"labels", b"unused: the local script wins")
    assert worker._fetch_and_evaluate(job)["script"] == worker.local_script.read_bytes()
    worker.cache._make_room(100)
    assert worker.local_script.is_file()


@pytest.fixture(autouse=True)
def _nothing_left_held(tmp_path):
    """Every test's holds end with it (a count left behind would keep entries from eviction for good)."""
    yield
    assert not [entry for entry in cache_module._held if entry.startswith(str(tmp_path.resolve()))]
