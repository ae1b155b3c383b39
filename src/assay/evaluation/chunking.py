"""Splitting one submission file into parts that ``evaluate_chunk()`` can score independently.

Why: a metric that is a sum over items (accuracy, counts for precision/recall, a confusion matrix)
can be computed on parts of a huge submission in parallel and merged. Assay only splits files it
understands the structure of, so every chunk is itself a valid file of the same format:

- JSON list or object: contiguous runs of items, each chunk the file's own bytes between two
  top-level commas inside ``[``/``]`` or ``{``/``}`` (never parsed and dumped again: that was the
  serial part of a chunked evaluation); the cut is then checked by parsing each chunk (``Cut``),
  and an object's key may not be in two chunks;
- JSON Lines: whole lines, cut at the line ends nearest to equal byte offsets;
- CSV: whole records, the header line repeated at the top of every chunk.

A file that cannot be split (bad JSON, a JSON scalar, a single item) yields no chunks, and the pool
falls back to the ordinary ``evaluate()``: the host's own script then reports what is wrong.

The submission is participant data, so the pool splits in a short-lived subprocess
(``SplitProcess``) that caps its own address space and time: a hostile 1 GB JSON file cannot take
the worker's memory. This module is stdlib-only and runs as a plain script for that.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import resource
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import subprocess

ChunkFormat = Literal["auto", "json", "jsonl", "csv"]
_COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class ChunkingSpec:
    """Opt-in chunked evaluation of one phase.

    ``chunk_count`` defaults to the pool's parallelism; ``min_bytes`` keeps small submissions on the
    plain path, where starting extra evaluators would cost more than it saves.
    """

    format: ChunkFormat = "auto"
    chunk_count: int | None = None
    min_bytes: int = 0

    def __post_init__(self) -> None:
        if self.format not in ("auto", "json", "jsonl", "csv"):
            raise ValueError(f"ChunkingSpec.format must be auto, json, jsonl or csv, not {self.format!r}")
        if self.chunk_count is not None and self.chunk_count < 1:
            raise ValueError("ChunkingSpec.chunk_count must be at least 1")
        if self.min_bytes < 0:
            raise ValueError("ChunkingSpec.min_bytes must not be negative")


class ChunkingError(ValueError):
    """The submission cannot be split in the requested format."""


def detect_format(path: Path, declared: ChunkFormat = "auto") -> str:
    """The format to split by: the declared one, else the extension, else a look at the first bytes."""
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    text = head.lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        # One object spanning the file is JSON; one complete object per line is JSON Lines.
        first_line = text.split(b"\n", 1)[0]
        try:
            json.loads(first_line)
        except ValueError:
            return "json"
        rest = text[len(first_line) :].strip()
        return "jsonl" if rest.startswith(b"{") else "json"
    if suffix == ".json":
        return "json"
    return "csv"


@dataclass
class Cut:
    """Chunk files already written, and whether they still need ``verify()`` before being trusted.

    A JSON file is cut at byte offsets without being re-serialised (see ``_cut_json``); each piece is
    proved to be a valid part of the whole only by parsing it, which ``verify()`` does. The pool runs
    that check while the evaluators already score the chunks, so it costs no wall-clock time.
    """

    parts: list[Path]
    check: Callable[[], bool] | None = None

    def verify(self) -> bool:
        return self.check is None or self.check()


def cut_submission(path: Path, count: int, out_dir: Path, fmt: ChunkFormat = "auto") -> Cut:
    """Write up to ``count`` chunk files of ``path`` into ``out_dir``, cheaply; ``Cut([])`` if it cannot.

    Fewer chunks than asked are written when the file has fewer items; one chunk is never returned
    (that would be the plain evaluation at a higher price). The cut is balanced by bytes.
    """
    if count < 2:
        return Cut([])
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = detect_format(path, fmt)
    try:
        if kind == "json":
            cut = _cut_json(path, count, out_dir)
            if cut is None:
                cut = Cut(_split_json_by_parsing(path, count, out_dir))
        elif kind == "jsonl":
            cut = Cut(_split_lines(path, count, out_dir, header=False))
        elif kind == "csv":
            cut = Cut(_split_csv(path, count, out_dir))
        else:
            raise ChunkingError(f"unknown chunk format {kind!r}")
    except (ChunkingError, ValueError, UnicodeError, RecursionError, csv.Error):
        return Cut([])
    return cut if len(cut.parts) > 1 else Cut([])


def split_submission(path: Path, count: int, out_dir: Path, fmt: ChunkFormat = "auto") -> list[Path]:
    """``cut_submission`` verified: chunk files that are known to be parts of the whole, or ``[]``.

    A JSON cut that fails its check (a key in two chunks, a cut that was not between two items) is
    redone by parsing the file and writing each chunk anew, which is always right and slower.
    """
    cut = cut_submission(path, count, out_dir, fmt)
    if cut.verify():
        return cut.parts
    for part in cut.parts:
        part.unlink(missing_ok=True)
    try:
        parts = _split_json_by_parsing(path, count, out_dir)
    except (ChunkingError, ValueError, UnicodeError, RecursionError):
        return []
    return parts if len(parts) > 1 else []


def _chunk_path(out_dir: Path, source: Path, index: int) -> Path:
    return out_dir / f"chunk-{index:04d}{source.suffix}"


def _write_chunk(out_dir: Path, source: Path, index: int, data: bytes) -> Path:
    target = _chunk_path(out_dir, source, index)
    target.write_bytes(data)
    os.chmod(target, 0o644)
    return target


_WS = re.compile(r"[ \t\n\r]*")
_PROBE_ITEMS = 8  # members parsed after a candidate comma before it is taken as a cut
_PROBE_CANDIDATES = 32  # commas tried per cut before giving that cut up


def _cut_json(path: Path, count: int, out_dir: Path) -> Cut | None:
    """Cut a JSON list or object between top-level items, copying bytes; None when it cannot.

    Why: parsing a large submission and dumping every chunk again was the serial part of a chunked
    evaluation. Cut points are found near equal byte offsets: a comma is taken when the next few
    members parse (C scanner) and are followed by commas or the end. That is a guess; the returned
    check proves it. If ``{``/``[`` + piece + ``}``/``]`` parses for every piece, the whole file is
    that container with the pieces' members in order (a cut inside a string or a nested value
    leaves an unterminated string or unbalanced brackets, which does not parse). For an object the
    check also refuses a key that is in two chunks: the whole file's parse keeps one value per key,
    the chunks would score both.
    """
    data = path.read_bytes()
    if b"\x00" in data:
        return None  # UTF-16/32 (or binary): leave it to the parsing split
    try:
        text = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    del data
    first = _WS.match(text).end()
    tail = text[-4096:].rstrip(" \t\n\r")  # not text.rstrip(): that would copy a large file
    last = len(text) - min(len(text), 4096) + len(tail) - 1
    if first >= last or (text[first], text[last]) not in (("{", "}"), ("[", "]")):
        return None
    opener, closer = text[first], text[last]
    start, end = first + 1, last
    scan = json.JSONDecoder().scan_once
    cuts = [start - 1]
    for index in range(1, count):
        target = max(start + (end - start) * index // count, cuts[-1] + 1)
        comma = _next_cut(text, target, end, opener == "{", scan)
        if comma is None:
            break
        cuts.append(comma)
    cuts.append(end)
    bounds = [(cuts[i] + 1, cuts[i + 1]) for i in range(len(cuts) - 1)]
    if len(bounds) < 2:
        return None
    parts = [
        _write_chunk(out_dir, path, i, (opener + text[a:b] + closer).encode("utf-8", "surrogatepass"))
        for i, (a, b) in enumerate(bounds)
    ]
    return Cut(parts, lambda: _check_json_pieces(text, opener, closer, bounds))


def _next_cut(text: str, pos: int, end: int, is_object: bool, scan: Callable) -> int | None:
    """The first comma at or after ``pos`` that looks like a top-level separator (see ``_cut_json``)."""
    for _ in range(_PROBE_CANDIDATES):
        comma = text.find(",", pos, end)
        if comma < 0:
            return None
        if _members_follow(text, comma + 1, end, is_object, scan):
            return comma
        pos = comma + 1
    return None


def _members_follow(text: str, pos: int, end: int, is_object: bool, scan: Callable) -> bool:
    try:
        for _ in range(_PROBE_ITEMS):
            pos = _WS.match(text, pos).end()
            if is_object:
                if text[pos : pos + 1] != '"':
                    return False
                _key, pos = scan(text, pos)
                pos = _WS.match(text, pos).end()
                if text[pos : pos + 1] != ":":
                    return False
                pos = _WS.match(text, pos + 1).end()
            _value, pos = scan(text, pos)
            pos = _WS.match(text, pos).end()
            if pos >= end:
                return pos == end
            if text[pos] != ",":
                return False
            pos += 1
    except (StopIteration, ValueError, RecursionError):
        return False
    return True


def _check_json_pieces(text: str, opener: str, closer: str, bounds: list[tuple[int, int]]) -> bool:
    keys = _DisjointKeys()
    for a, b in bounds:
        try:
            piece = json.loads(opener + text[a:b] + closer)
        except (ValueError, RecursionError):
            return False
        if not piece:
            return False
        if isinstance(piece, dict) and not keys.add(list(piece)):
            return False
    return True


class _DisjointKeys:
    """Whether the object chunks' key lists, added in chunk order, have no key in common.

    Why not always a set: hashing and storing a million keys was a sixth of the check's CPU. Keys
    that rise strictly across all chunks so far (ids written in order, the usual case) are distinct
    by that alone: sorting a sorted list is one comparison per key. The first chunk that breaks the
    order sends every key seen so far into a set, and the set decides from then on.
    """

    def __init__(self) -> None:
        self._ordered: list[list[str]] | None = []
        self._seen: set[str] = set()

    def add(self, keys: list[str]) -> bool:
        if self._ordered is not None:
            previous = self._ordered[-1][-1] if self._ordered else None
            if (previous is None or previous < keys[0]) and keys == sorted(keys):
                self._ordered.append(keys)
                return True
            for earlier in self._ordered:
                self._seen.update(earlier)
            self._ordered = None
        if not self._seen.isdisjoint(keys):
            return False
        self._seen.update(keys)
        return True


def _split_json_by_parsing(path: Path, count: int, out_dir: Path) -> list[Path]:
    """Parse the whole file and write each chunk anew: always right (one value per key), slower."""
    with path.open("rb") as fh:
        data = json.load(fh)
    if isinstance(data, list):
        items: list = data
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        raise ChunkingError("a JSON submission must be a list or an object to be split")
    n = min(count, len(items))
    if n < 2:
        return []
    parts = []
    for index in range(n):
        lo, hi = len(items) * index // n, len(items) * (index + 1) // n
        piece = items[lo:hi] if isinstance(data, list) else dict(items[lo:hi])
        parts.append(_write_chunk(out_dir, path, index, json.dumps(piece).encode()))
    return parts


def _split_lines(path: Path, count: int, out_dir: Path, *, header: bool) -> list[Path]:
    """Cut at the line ends nearest to equal byte offsets and copy the byte ranges (memory stays flat)."""
    total = path.stat().st_size
    with path.open("rb") as src:
        head = src.readline() if header else b""
        body = src.tell()
        cuts = [body]
        for index in range(1, count):
            target = body + (total - body) * index // count
            if target <= cuts[-1]:
                continue
            src.seek(target - 1)
            src.readline()  # to the end of the line the offset falls in
            if src.tell() >= total:
                break
            cuts.append(src.tell())
        cuts.append(total)
        parts = []
        for index in range(len(cuts) - 1):
            target_path = _chunk_path(out_dir, path, index)
            with target_path.open("wb") as out:
                out.write(head)
                src.seek(cuts[index])
                remaining = cuts[index + 1] - cuts[index]
                while remaining:
                    block = src.read(min(_COPY_BLOCK, remaining))
                    if not block:
                        break
                    out.write(block)
                    remaining -= len(block)
            os.chmod(target_path, 0o644)
            parts.append(target_path)
    return parts


def _split_csv(path: Path, count: int, out_dir: Path) -> list[Path]:
    """Raw line cuts when no field is quoted (fast); otherwise re-written record by record.

    A quoted field may hold a newline, so a raw cut could land inside a record; the csv module then
    finds the record boundaries and re-quotes each record (same data, possibly different quoting).
    """
    with path.open("rb") as fh:
        quoted = False
        while block := fh.read(_COPY_BLOCK):
            if b'"' in block:
                quoted = True
                break
    if not quoted:
        return _split_lines(path, count, out_dir, header=True)
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, dialect))
    if len(rows) < 3:
        return []
    header, body = rows[0], rows[1:]
    n = min(count, len(body))
    parts = []
    for index in range(n):
        lo, hi = len(body) * index // n, len(body) * (index + 1) // n
        buf = io.StringIO()
        writer = csv.writer(buf, dialect)
        writer.writerow(header)
        writer.writerows(body[lo:hi])
        parts.append(_write_chunk(out_dir, path, index, buf.getvalue().encode("utf-8")))
    return parts


def start_splitter() -> subprocess.Popen | None:
    """A split process, started and with this module imported, that waits for its request on stdin.

    Why started ahead: the interpreter's start and the imports were ~60 % of the split's CPU
    (~0.09 of 0.15 s at 10^6 items), and the split is the serial part of a chunked evaluation. The
    pool keeps one such spare after a chunked evaluation for the next one. None if it cannot start.
    """
    import subprocess  # here: the split process itself, which runs this file, never needs it

    try:
        return subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2"},
        )
    except OSError:
        return None


class SplitProcess:
    """``cut_submission`` in a separate, memory- and time-capped process, read in two steps.

    The submission is participant data and a JSON file must be parsed to be checked, so this runs
    outside the worker (a hostile 1 GB JSON file cannot take the worker's memory). The process
    prints the chunk list as soon as the chunks are written, then checks them and prints the
    verdict: the caller starts scoring the chunks meanwhile and trusts them only after ``verified()``.
    ``process`` is a spare from ``start_splitter()`` (a new one is started if it is None or dead).
    """

    def __init__(
        self,
        path: Path,
        count: int,
        out_dir: Path,
        fmt: ChunkFormat = "auto",
        *,
        memory_bytes: int,
        timeout: float,
        process: subprocess.Popen | None = None,
    ) -> None:
        request = {"path": str(path), "count": count, "out_dir": str(out_dir), "format": fmt, "memory": memory_bytes}
        self.deadline = time.monotonic() + timeout
        self.cut_cpu_seconds = 0.0  # CPU the process spent to write the chunks (its start included if fresh)
        self.check_cpu_seconds = 0.0  # ... and then to check them
        self._cpu_at_cut = 0.0
        self._buffer = b""
        self._parts: list[Path] | None = None
        self._verified: bool | None = None
        line = json.dumps(request).encode() + b"\n"
        self.proc = process if process is not None and _send(process, line) else None
        self.started_ahead = self.proc is not None  # its start was paid before this split
        if self.proc is None:
            fresh = start_splitter()
            self.proc = fresh if fresh is not None and _send(fresh, line) else None

    def parts(self) -> list[Path]:
        """The chunk files (not yet checked), or ``[]`` when the submission cannot be split."""
        if self._parts is None:
            message = self._message()
            self._parts = [Path(p) for p in message.get("parts", [])] if message else []
            if message is not None:
                self._cpu_at_cut = float(message.get("cpu_seconds", 0.0))
                idle = float(message.get("idle_cpu_seconds", 0.0)) if self.started_ahead else 0.0
                self.cut_cpu_seconds = self._cpu_at_cut - idle
                if message.get("verified"):
                    self._verified = True
        return self._parts

    def verified(self) -> bool:
        """Whether the chunks are exactly the submission's items (waits for the check)."""
        if not self.parts():
            return False
        if self._verified is None:
            message = self._message()
            self._verified = bool(message and message.get("verified"))
            if message:
                self.check_cpu_seconds = float(message.get("cpu_seconds", 0.0)) - self._cpu_at_cut
        self.close()
        return self._verified

    def close(self) -> None:
        if self.proc is not None:
            stop_splitter(self.proc)

    def _message(self) -> dict | None:
        """The next JSON line from the process; None on a timeout, a crash or garbage."""
        proc = self.proc
        if proc is None or proc.stdout is None:
            return None
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self.close()
                return None
            data = os.read(fd, 65536)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


def stop_splitter(proc: subprocess.Popen) -> None:
    """Kill a split process (a spare, or one whose answer is no longer wanted) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _send(proc: subprocess.Popen, line: bytes) -> bool:
    """Hand ``line`` (the request) to a waiting split process; False if it has died."""
    if proc.poll() is not None or proc.stdin is None:
        stop_splitter(proc)
        return False
    try:
        proc.stdin.write(line)
        proc.stdin.close()
    except OSError:
        stop_splitter(proc)
        return False
    return True


def split_in_subprocess(
    path: Path, count: int, out_dir: Path, fmt: ChunkFormat = "auto", *, memory_bytes: int, timeout: float
) -> list[Path]:
    """Checked chunk files from a ``SplitProcess`` (waiting for the check), or ``[]``."""
    split = SplitProcess(path, count, out_dir, fmt, memory_bytes=memory_bytes, timeout=timeout)
    try:
        return split.parts() if split.verified() else []
    finally:
        split.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _main() -> None:
    request = json.loads(sys.stdin.buffer.readline() or b"null")
    if not isinstance(request, dict):
        return  # the pool closed while this was its spare
    idle = _cpu_seconds()  # the interpreter's start and imports, before the request came
    limit = int(request["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cut = cut_submission(Path(request["path"]), int(request["count"]), Path(request["out_dir"]), request["format"])
    first = {"parts": [str(p) for p in cut.parts], "verified": cut.check is None, "cpu_seconds": _cpu_seconds()}
    first["idle_cpu_seconds"] = idle
    print(json.dumps(first), flush=True)
    if not first["verified"]:
        print(json.dumps({"verified": cut.verify(), "cpu_seconds": _cpu_seconds()}), flush=True)


if __name__ == "__main__":
    _main()
