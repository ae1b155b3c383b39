"""``assay.server.prepared.insert``: the INSERT built once that writes a result's leaderboard entries must
store exactly what ``bulk_create`` stores (JSON, SQL NULL, defaults, ``auto_now_add``), for one row and several."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.prepared import insert
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import upload

pytestmark = pytest.mark.django_db

COLUMNS = ("phase_split_id", "submission_id", "participant_team_id", "result", "error", "intervals", "is_disabled")


@pytest.fixture
def submissions(team, participant, demo_challenge) -> list[Submission]:
    phase = demo_challenge.phases.get(codename="dev")
    return [
        submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name=f"m{i}"))
        for i in range(2)
    ]


def entries(sub: Submission, variant: int) -> list[LeaderboardEntry]:
    splits = ChallengePhaseSplit.objects.filter(phase__challenge_id=sub.phase.challenge_id).order_by("pk")
    rows = []
    for i, split in enumerate(splits):
        shape = (variant + i) % 3
        rows.append(
            LeaderboardEntry(
                phase_split_id=split.pk,
                submission=sub,
                participant_team_id=sub.participant_team_id,
                result={"Accuracy": 0.5 + i, "F1": None, "note": "ünï\"'%s"},
                error=None if shape == 0 else {"error_Accuracy": 0.01 * i},
                **({} if shape == 1 else {"intervals": {"Accuracy": [0.1, 0.9]}}),  # shape 1: the default
                **({"is_disabled": True} if shape == 2 else {}),
            )
        )
    return rows


def stored(sub: Submission) -> list[tuple]:
    return list(LeaderboardEntry.objects.filter(submission=sub).order_by("pk").values_list(*COLUMNS))


def test_insert_stores_what_bulk_create_stores(submissions):
    by_orm, by_insert = submissions
    assert ChallengePhaseSplit.objects.filter(phase__challenge_id=by_orm.phase.challenge_id).count() >= 2  # rows: 2+
    for variant in range(3):
        LeaderboardEntry.objects.filter(submission__in=submissions).delete()
        LeaderboardEntry.objects.bulk_create(entries(by_orm, variant))
        rows = entries(by_insert, variant)
        with CaptureQueriesContext(connection) as captured:
            insert(rows)
        assert len(captured.captured_queries) == 1
        orm, ours = stored(by_orm), stored(by_insert)
        assert len(ours) == len(orm) >= 2
        assert [row[2:] for row in ours] == [row[2:] for row in orm]  # all but the submission's own ids
        assert [row[0] for row in ours] == [row[0] for row in orm]
    assert all(e.created_at is not None for e in LeaderboardEntry.objects.filter(submission=by_insert))


def test_insert_refuses_what_it_cannot_write_as_bulk_create_would(submissions):
    with CaptureQueriesContext(connection) as captured:
        insert([])
    assert captured.captured_queries == []
    sub = submissions[0]
    saved = entries(sub, 0)[0]
    saved.save()
    with pytest.raises(ValueError, match="ids not set"):
        insert([saved])
    with pytest.raises(ValueError, match="one model"):
        insert([entries(sub, 0)[0], sub])
