"""The evidence trail: records chain onto each other, concurrent appends never fork it, exports verify."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from assay.evidence import chain
from assay.server.audits.models import TrailRecord
from assay.server.audits.services import trail
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import upload


def a_submission(participant, challenge):
    phase = challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(), "p.json", SubmissionFields())


@pytest.mark.django_db
def test_records_chain_and_the_export_verifies(team, participant, demo_challenge):
    sub = a_submission(participant, demo_challenge)
    first = trail.append(sub, "submitted", "alice", {"file_sha256": "ab" * 32})
    second = trail.append(sub, "evaluated", "worker:w1", {"status": "finished", "score": 0.8125, "big": 1e20})
    assert (first.seq, first.prev_hash) == (1, chain.GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    records = trail.export(sub)
    assert [r["kind"] for r in records] == ["submitted", "evaluated"]
    assert chain.broken_links(records) == []
    assert records[0]["at"].endswith("+00:00") and len(records[0]["at"].split(".")[1]) == len("123456+00:00")
    assert trail.head(sub) == (second.hash, 2)


@pytest.mark.django_db
def test_an_edited_row_shows_in_the_export(team, participant, demo_challenge):
    sub = a_submission(participant, demo_challenge)
    trail.append(sub, "submitted", "alice", {"n": 1})
    trail.append(sub, "evaluated", "system", {"n": 2})
    TrailRecord.objects.filter(submission=sub, seq=1).update(payload={"n": 9})
    assert chain.broken_links(trail.export(sub)) == [
        "record 1 (submitted) was changed after it was written (its hash differs)"
    ]


@pytest.mark.django_db
def test_trails_of_two_submissions_are_separate(team, participant, demo_challenge):
    one, two = a_submission(participant, demo_challenge), a_submission(participant, demo_challenge)
    trail.append(one, "submitted", "alice", {})
    record = trail.append(two, "submitted", "alice", {})
    assert (record.seq, record.prev_hash) == (1, chain.GENESIS)
    assert trail.head(one)[1] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("deleted", {}, "unknown trail kind 'deleted'"),
        ("answered", {"x": float("nan")}, "payload.x is nan"),
        ("answered", {"x": [object()]}, "payload.x[0] is a object, not JSON"),
        ("answered", {1: "a"}, "payload has a key that is not a string"),
        ("answered", {"x": "a\x00b"}, "payload.x holds a NUL character"),
        ("answered", {"x": "\ud800"}, "payload.x is not valid Unicode"),
        ("answered", {"x": "a" * 9000}, "a trail payload is at most 8192 bytes of JSON"),
        ("answered", ["a"], "a trail payload is a JSON object"),
    ],
)
def test_bad_kinds_and_payloads_are_refused(team, participant, demo_challenge, kind, payload, message):
    sub = a_submission(participant, demo_challenge)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        trail.append(sub, kind, "alice", payload)
    assert not TrailRecord.objects.filter(submission=sub).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain(team, participant, demo_challenge):
    sub = a_submission(participant, demo_challenge)

    def append(i: int) -> int:
        try:
            return trail.append(sub, "answered", f"user{i}", {"i": i}).seq
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(append, range(40)))
    assert sorted(seqs) == list(range(1, 41))
    records = trail.export(sub)
    assert chain.broken_links(records) == []
    assert sorted(r["payload"]["i"] for r in records) == list(range(40))
