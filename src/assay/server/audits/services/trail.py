"""A submission's evidence trail: append a hash-chained record, export the chain for ``assay audit verify``.

The hashes are ``assay.evidence.chain``'s, taken over exactly what is stored: ``at`` is kept as an ISO 8601
UTC string with microseconds (the row's DateTimeField holds the same instant and gives the same string
back), and the payload is normalised to what JSON gives back on every database before it is hashed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from assay.evidence import chain
from assay.server.audits.models import TrailRecord
from assay.server.submissions.models import Submission

#: The events the services record (docs/audits.md, "Evidence trail and verification").
KINDS = frozenset(
    {
        "submitted",
        "evaluated",
        "cases_stored",
        "summarised",
        "answered",
        "answers_submitted",
        "review_started",
        "reviewed",
        "approved",
        "rejected",
        "released",
        "retracted",
    }
)
#: A payload says what happened (ids, states, hashes), never carries the data itself.
MAX_PAYLOAD_BYTES = 8192
_EXACT_FLOAT = 2**53  # beyond this PostgreSQL's jsonb gives an integral float back as an int


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _normalised(value: Any, where: str = "payload") -> Any:
    """``value`` as JSON gives it back from SQLite and PostgreSQL alike, or ValueError naming the bad part."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} holds a NUL character")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{where} is not valid Unicode") from None
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: a trail payload holds finite numbers only")
        if value.is_integer() and abs(value) >= _EXACT_FLOAT:
            return int(value)
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError(f"{where} has a key that is not a string")
        return {_normalised(key, where): _normalised(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{where} is a {type(value).__name__}, not JSON")


def _payload(payload: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("a trail payload is a JSON object")
    clean = _normalised(payload)
    size = len(chain.canonical(clean))
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a trail payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON, this one {size}")
    return clean


def append(submission: Submission, kind: str, actor: str, payload: dict[str, Any]) -> TrailRecord:
    """Add the next record to ``submission``'s trail; two concurrent appends never fork the chain.

    The submission row is locked (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the IMMEDIATE transaction
    holds the write lock from BEGIN) while the last record is read and the next written. Inside a caller's
    transaction the record commits or rolls back with the caller's change.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown trail kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    clean = _payload(payload)
    with transaction.atomic():
        if connection.features.has_select_for_update:
            Submission.objects.select_for_update().filter(pk=submission.pk).values_list("pk", flat=True).get()
        last = TrailRecord.objects.filter(submission_id=submission.pk).order_by("-seq").values("seq", "hash").first()
        seq, prev_hash = (last["seq"] + 1, last["hash"]) if last else (1, chain.GENESIS)
        at = timezone.now()
        linked = chain.link(prev_hash, seq, kind, actor[:150], _timestamp(at), clean)
        return TrailRecord.objects.create(
            submission_id=submission.pk,
            seq=seq,
            kind=kind,
            actor=linked["actor"],
            at=at,
            payload=linked["payload"],
            prev_hash=prev_hash,
            hash=linked["hash"],
        )


def as_record(row: TrailRecord) -> dict[str, Any]:
    """One stored row as ``assay.evidence.chain``'s record dict."""
    return {
        "seq": row.seq,
        "kind": row.kind,
        "actor": row.actor,
        "at": _timestamp(row.at),
        "payload": json.loads(json.dumps(row.payload)),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def export(submission: Submission) -> list[dict[str, Any]]:
    """The whole trail, oldest first, as ``chain.broken_links`` and ``assay audit verify`` read it."""
    return [as_record(row) for row in TrailRecord.objects.filter(submission_id=submission.pk).order_by("seq")]


def head(submission: Submission) -> tuple[str, int]:
    """The last record's hash (:data:`chain.GENESIS` for an empty trail) and the trail's length."""
    head_hash, length, _ = head_at(submission)
    return head_hash, length


def head_at(submission: Submission) -> tuple[str, int, dt.datetime | None]:
    """:func:`head`, and when the last record was written (None for an empty trail), read together."""
    last = TrailRecord.objects.filter(submission_id=submission.pk).order_by("-seq").values("seq", "hash", "at").first()
    return (last["hash"], last["seq"], last["at"]) if last else (chain.GENESIS, 0, None)


def document(submission: Submission) -> dict[str, Any]:
    """The trail as a download: ``assay audit verify MANIFEST --trail FILE`` reads this object (or the bare list)."""
    return {"schema": "assay-audit-trail/1", "submission": submission.pk, "records": export(submission)}
