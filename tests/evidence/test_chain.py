"""The hash chain: an intact trail holds; one changed byte, a removed or a moved record is named."""

from __future__ import annotations

import json

from assay.evidence import chain
from tests.evidence.helpers import a_trail


def test_an_intact_trail_holds_and_survives_a_json_round_trip():
    records = a_trail()
    assert chain.broken_links(records) == []
    assert chain.broken_links(json.loads(json.dumps(records, indent=1))) == []


def test_an_empty_trail_holds():
    assert chain.broken_links([]) == []


def test_one_changed_byte_in_the_exported_file_is_named():
    text = json.dumps(a_trail())
    tampered = json.loads(text.replace('"step": 2', '"step": 3', 1))
    assert chain.broken_links(tampered) == ["record 2 (evaluated) was changed after it was written (its hash differs)"]


def test_a_changed_timestamp_or_actor_is_named():
    records = a_trail()
    records[0]["at"] = records[0]["at"].replace(".000001", ".000002")
    records[2]["actor"] = "mallory"
    assert chain.broken_links(records) == [
        "record 1 (submitted) was changed after it was written (its hash differs)",
        "record 3 (cases_stored) was changed after it was written (its hash differs)",
    ]


def test_a_removed_record_is_named():
    records = a_trail()
    del records[1]
    assert chain.broken_links(records) == [
        "record 2 has seq 3, expected 2: a record was removed or moved",
        "record 3 (cases_stored) does not follow the previous record's hash",
    ]


def test_reordered_records_are_named():
    records = a_trail()
    records[1], records[2] = records[2], records[1]
    problems = chain.broken_links(records)
    assert problems[0] == "record 2 has seq 3, expected 2: a record was removed or moved"
    assert "record 3 (cases_stored) does not follow the previous record's hash" in problems


def test_a_rewritten_tail_cannot_hide_a_removed_record_from_its_successor():
    records = a_trail()
    forged = chain.link(records[0]["hash"], 2, "evaluated", "alice", records[1]["at"], {"step": 99})
    records[1] = forged  # a valid record in itself, but record 3 still points at the original
    assert chain.broken_links(records) == ["record 3 (cases_stored) does not follow the previous record's hash"]


def test_a_record_without_its_fields_is_named():
    records = a_trail(2)
    del records[1]["prev_hash"]
    assert chain.broken_links(records) == ["record 2 lacks prev_hash"]


def test_a_hostile_record_that_cannot_be_hashed_is_named_not_raised():
    records = a_trail(2)
    records[1]["payload"] = json.loads('{"x": NaN}')
    assert chain.broken_links(records) == ["record 2 (evaluated) was changed after it was written (its hash differs)"]
