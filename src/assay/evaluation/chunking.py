"""Splitting one submission file into parts that ``evaluate_chunk()`` can score independently.

Why: a metric that is a sum over items (accuracy, counts for precision/recall, a confusion matrix)
can be computed on parts of a huge submission in parallel and merged. Assay only splits files it
understands the structure of, so every chunk is itself a valid file of the same format:

- JSON list: contiguous slices, each written as a JSON list;
- JSON object: split by keys (``{id: prediction}``), each chunk an object with some of the keys;
- JSON Lines: whole lines (streamed, never loaded as a whole);
- CSV: whole records, the header line repeated at the top of every chunk.

A file that cannot be split (bad JSON, a JSON scalar, a single item) yields no chunks, and the pool
falls back to the ordinary ``evaluate()``: the host's own script then reports what is wrong.

The submission is participant data and a JSON file must be parsed whole to be split, so the pool
splits in a short-lived subprocess (``split_in_subprocess``) that caps its own address space and
time: a hostile 1 GB JSON file cannot take the worker's memory. This module is stdlib-only and runs
as a plain script for that.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


def split_submission(path: Path, count: int, out_dir: Path, fmt: ChunkFormat = "auto") -> list[Path]:
    """Write up to ``count`` chunk files of ``path`` into ``out_dir``; ``[]`` when it cannot be split.

    Fewer chunks than asked are returned when the file has fewer items; one chunk is never returned
    (that would be the plain evaluation at a higher price).
    """
    if count < 2:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = detect_format(path, fmt)
    try:
        if kind == "json":
            parts = _split_json(path, count, out_dir)
        elif kind == "jsonl":
            parts = _split_lines(path, count, out_dir, header=False)
        elif kind == "csv":
            parts = _split_csv(path, count, out_dir)
        else:
            raise ChunkingError(f"unknown chunk format {kind!r}")
    except (ChunkingError, ValueError, UnicodeDecodeError, csv.Error):
        return []
    return parts if len(parts) > 1 else []


def _chunk_path(out_dir: Path, source: Path, index: int) -> Path:
    return out_dir / f"chunk-{index:04d}{source.suffix}"


def _split_json(path: Path, count: int, out_dir: Path) -> list[Path]:
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
        target = _chunk_path(out_dir, path, index)
        target.write_text(json.dumps(piece), encoding="utf-8")  # dumps: one C call, json.dump is slow
        os.chmod(target, 0o644)
        parts.append(target)
    return parts


def _split_lines(path: Path, count: int, out_dir: Path, *, header: bool) -> list[Path]:
    """Cut at line boundaries into parts of about equal size, streaming (memory does not grow)."""
    total = path.stat().st_size
    parts: list[Path] = []
    with path.open("rb") as src:
        head = src.readline() if header else b""
        body_size = total - len(head)
        target_size = max(1, body_size // count)
        line = src.readline()
        while line:
            target = _chunk_path(out_dir, path, len(parts))
            written = 0
            with target.open("wb") as out:
                out.write(head)
                last = len(parts) == count - 1
                while line and (last or written < target_size):
                    out.write(line)
                    written += len(line)
                    line = src.readline()
            os.chmod(target, 0o644)
            parts.append(target)
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
        target = _chunk_path(out_dir, path, index)
        target.write_text(buf.getvalue(), encoding="utf-8", newline="")
        os.chmod(target, 0o644)
        parts.append(target)
    return parts


def split_in_subprocess(
    path: Path, count: int, out_dir: Path, fmt: ChunkFormat = "auto", *, memory_bytes: int, timeout: float
) -> list[Path]:
    """``split_submission`` in a separate, memory- and time-capped process; ``[]`` if it fails."""
    request = {"path": str(path), "count": count, "out_dir": str(out_dir), "format": fmt, "memory": memory_bytes}
    try:
        run = subprocess.run(
            [sys.executable, "-I", os.path.abspath(__file__), json.dumps(request)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "2"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if run.returncode != 0:
        return []
    try:
        return [Path(p) for p in json.loads(run.stdout)]
    except ValueError:
        return []


def _main() -> None:
    request = json.loads(sys.argv[1])
    limit = int(request["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    parts = split_submission(Path(request["path"]), int(request["count"]), Path(request["out_dir"]), request["format"])
    print(json.dumps([str(p) for p in parts]))


if __name__ == "__main__":
    _main()
