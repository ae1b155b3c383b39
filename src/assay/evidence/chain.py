"""The hash chain of an evidence trail: each record's hash covers its content and the previous hash.

A record is ``{"seq", "kind", "actor", "at", "payload", "prev_hash", "hash"}``; ``at`` is an ISO 8601
UTC string. The hash is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of every field
but ``hash``, so a verifier needs nothing but this module and the exported records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: The ``prev_hash`` of a trail's first record.
GENESIS = "0" * 64
FIELDS = ("seq", "kind", "actor", "at", "payload", "prev_hash")


def canonical(value: Any) -> bytes:
    """The one byte form every hash in ``assay.evidence`` is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the record's fields other than ``hash``."""
    return hashlib.sha256(canonical({name: record[name] for name in FIELDS})).hexdigest()


def link(prev_hash: str, seq: int, kind: str, actor: str, at: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The next record of a trail whose last hash is ``prev_hash`` (:data:`GENESIS` for the first)."""
    record: dict[str, Any] = {
        "seq": seq,
        "kind": kind,
        "actor": actor,
        "at": at,
        "payload": dict(payload),
        "prev_hash": prev_hash,
    }
    record["hash"] = record_hash(record)
    return record


def broken_links(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Why the trail does not hold, one sentence per broken record; empty when every link holds."""
    problems: list[str] = []
    expected_prev, expected_seq = GENESIS, 1
    for index, record in enumerate(records):
        missing = [name for name in (*FIELDS, "hash") if name not in record]
        if missing:
            problems.append(f"record {index + 1} lacks {', '.join(missing)}")
            break
        seq = record["seq"]
        if seq != expected_seq:
            problems.append(f"record {index + 1} has seq {seq}, expected {expected_seq}: a record was removed or moved")
        if record["prev_hash"] != expected_prev:
            problems.append(f"record {seq} ({record['kind']}) does not follow the previous record's hash")
        try:
            changed = record_hash(record) != record["hash"]
        except (TypeError, ValueError):  # NaN, a non-string key: nothing this module ever wrote
            changed = True
        if changed:
            problems.append(f"record {seq} ({record['kind']}) was changed after it was written (its hash differs)")
        # resynchronise on the record's own seq, so one removed record is named once, not at every later one
        expected_prev = record["hash"]
        expected_seq = seq + 1 if type(seq) is int else expected_seq + 1
    return problems
