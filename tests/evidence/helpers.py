"""A small trail and manifest the evidence tests tamper with."""

from __future__ import annotations

from typing import Any

from assay.evidence import chain, manifest

SUMMARY = {"task": "ordinal", "n": 600, "headline": {"qwk": {"value": 0.81, "low": 0.77, "high": 0.85}}}
SETTINGS = {"task": "ordinal", "grades": [0, 1, 2, 3, 4], "bootstrap": {"resamples": 1000, "seed": 20261202}}


def a_trail(length: int = 4) -> list[dict[str, Any]]:
    kinds = ["submitted", "evaluated", "cases_stored", "summarised", "answered", "released"]
    records: list[dict[str, Any]] = []
    prev = chain.GENESIS
    for seq in range(1, length + 1):
        at = f"2026-12-02T10:00:{seq:02d}.000001+00:00"
        record = chain.link(prev, seq, kinds[(seq - 1) % len(kinds)], "alice", at, {"step": seq, "note": "é"})
        records.append(record)
        prev = record["hash"]
    return records


def a_manifest(records: list[dict[str, Any]], files: dict[str, str | None] | None = None) -> dict[str, Any]:
    head = (records[-1]["hash"], len(records)) if records else (chain.GENESIS, 0)
    return manifest.document(
        submission={"id": 7, "challenge": {"id": 1, "slug": "dr"}, "phase": {"id": 2, "codename": "test"}},
        files=files or {"submission": "ab" * 32, "evaluation_script": "cd" * 32},
        environment={"name": "evalai-py3.9", "packages": ["numpy==1.26.4"]},
        audit_settings=SETTINGS,
        summary=SUMMARY,
        trail_head=head,
        assay_version="0.1.0",
        created_at="2026-12-02T10:01:00.000000+00:00",
    )
