"""``assay.server.prepared.save_new``: the INSERT built once that creates every submission must store what
``Model.save`` stores, send the same signals (the queue's wake-up, the request id, metrics, caches hang on
them), and leave the instance as a saved one."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from assay.server.challenges.models import Challenge
from assay.server.prepared import save_new
from assay.server.submissions.models import Submission

pytestmark = pytest.mark.django_db

# what differs between two rows saved one after the other: their ids, the times and the request ids stamped
OWN = ("id", "submitted_at", "request_id")


def new_submission(team, participant, phase, n: int) -> Submission:
    return Submission(
        phase=phase,
        participant_team=team,
        created_by=participant,
        submission_number=n,
        input_file="submissions/x.json",
        input_file_name="x.json",
        input_file_sha256="ab" * 32,
        input_file_size=12,
        method_name="m ünï \"'%s",
        submission_metadata={"k": [1, None, "v"]},
        is_public=True,
        queue_name="q",
    )


def row(sub: Submission) -> dict:
    values = model_to_dict(Submission.objects.get(pk=sub.pk))
    return {k: (str(v) if hasattr(v, "name") else v) for k, v in values.items() if k not in OWN}


def test_save_new_stores_and_signals_what_save_does(team, participant, demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    seen: list[tuple] = []

    def record(signal):
        def receiver(sender, instance, **kwargs):
            kwargs.pop("signal")
            seen.append((signal, sender, instance.pk is None, instance._state.adding, kwargs))

        return receiver

    before, after = record("pre_save"), record("post_save")
    pre_save.connect(before, sender=Submission, weak=False)
    post_save.connect(after, sender=Submission, weak=False)
    try:
        by_orm = new_submission(team, participant, phase, 1)
        with CaptureQueriesContext(connection) as by_save:
            by_orm.save()
        orm_signals, seen[:] = list(seen), []
        ours = new_submission(team, participant, phase, 1)
        with CaptureQueriesContext(connection) as captured:
            save_new(ours)
    finally:
        pre_save.disconnect(before, sender=Submission)
        post_save.disconnect(after, sender=Submission)
    statements = [q["sql"] for q in captured.captured_queries]
    assert statements[0].startswith("INSERT") and len(statements) == len(by_save.captured_queries)
    assert statements[1:] == [q["sql"] for q in by_save.captured_queries][1:]  # receivers: a NOTIFY
    assert seen == orm_signals
    assert [s[0] for s in seen] == ["pre_save", "post_save"]
    assert seen[1][4]["created"] is True
    assert ours.pk is not None and ours.pk > by_orm.pk
    assert not ours._state.adding and ours._state.db == by_orm._state.db
    assert ours.request_id and ours.submitted_at is not None  # stamped by pre_save's receiver, auto_now_add
    assert row(ours) == row(by_orm)
    assert Submission.objects.get(pk=ours.pk).submitted_at == ours.submitted_at


def test_save_new_refuses_a_saved_row_and_a_model_with_its_own_save(team, participant, demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    sub = new_submission(team, participant, phase, 1)
    save_new(sub)
    with pytest.raises(ValueError, match="new instance"):
        save_new(sub)
    assert Challenge.save is not Submission.save  # Challenge overrides save(): that override would be skipped
    with pytest.raises(ValueError, match="keeps Model.save"):
        save_new(Challenge(title="x"))
    assert Submission.objects.filter(phase=phase).count() == 1


@pytest.mark.parametrize("saver", [Submission.save, save_new], ids=["save", "save_new"])
def test_a_refused_insert_marks_the_transaction_for_rollback_as_save_does(saver, team, participant, demo_challenge):
    """A caller that catches the database's refusal inside a transaction cannot go on writing in it."""
    phase = demo_challenge.phases.get(codename="dev")
    sub = new_submission(team, participant, phase, 1)
    sub.method_name = None  # NOT NULL: refused by the database at once
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            saver(sub)
        assert connection.needs_rollback
    assert not Submission.objects.filter(phase=phase).exists()
