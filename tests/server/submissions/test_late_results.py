"""A result finished while the server was out of reach still counts, unless a later attempt completed.

Service level (``queue.complete``): the attempt whose lease ran out may report while the job waits
to be claimed again, runs again (that later attempt is superseded: its heartbeat and its result are
refused), was handed back, or failed because every lease was lost. Never after a completed attempt
or a cancel, and never twice.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle, queue
from assay.server.submissions.services.errors import LeaseLost
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db

GOOD = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}
BETTER = {"result": [{"public": {"Accuracy": 1.0, "F1": 1.0}}]}


@pytest.fixture
def token(admin_user, demo_challenge):
    row, _ = create_worker_token(admin_user, "test worker")
    return row


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name="m1"))


def expire(sub: Submission) -> None:
    Submission.objects.filter(pk=sub.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


def report(attempt: int, output=GOOD) -> queue.Completion:
    return queue.Completion(attempt=attempt, output=output, stdout="done\n")


def test_a_late_result_lands_while_nobody_took_the_job_again(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    done = queue.complete(token, queued.pk, report(first.attempt))
    assert done.status == "finished"
    assert LeaderboardEntry.objects.get(submission=queued).result == {"Accuracy": 0.75, "F1": 0.5}


def test_a_late_result_supersedes_the_attempt_running_now(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    second = queue.claim_next(token, "w2")
    assert (second.pk, second.attempt, second.expired_leases) == (queued.pk, 2, 1)
    done = queue.complete(token, queued.pk, report(1))
    assert done.status == "finished" and done.lease_owner == "" and done.lease_expires_at is None
    with pytest.raises(LeaseLost):
        queue.heartbeat(token, queued.pk, 2)  # the later attempt's worker hears "lease lost"
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(2, BETTER))  # and its result is not taken: once per submission
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(1))  # nor the same one twice
    assert [e.result for e in LeaderboardEntry.objects.filter(submission=queued)] == [{"Accuracy": 0.75, "F1": 0.5}]


def test_a_late_result_is_refused_after_a_later_attempt_completed(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    queue.claim_next(token, "w2")
    assert queue.complete(token, queued.pk, report(2, BETTER)).status == "finished"
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(1))
    assert LeaderboardEntry.objects.get(submission=queued).result == {"Accuracy": 1.0, "F1": 1.0}


def test_a_late_failure_report_also_counts_once(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    queue.claim_next(token, "w2")
    failed = queue.complete(token, queued.pk, queue.Completion(attempt=1, error="out of memory"))
    assert failed.status == "failed" and failed.failure_reason == "out of memory"
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(2))


def test_a_late_result_lands_after_the_job_was_handed_back(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    second = queue.claim_next(token, "w2")
    queue.release(token, queued.pk, second.attempt)  # its worker stopped
    assert queue.complete(token, queued.pk, report(1)).status == "finished"
    assert queue.claim_next(token, "w3") is None


def test_a_late_result_lands_after_every_lease_was_lost(token, queued, settings):
    settings.WORKER_MAX_ATTEMPTS = 2
    expire(queue.claim_next(token, "w1"))
    expire(queue.claim_next(token, "w2"))
    assert queue.claim_next(token, "w3") is None
    queued.refresh_from_db()
    assert queued.status == "failed" and "lost 2 times" in queued.failure_reason
    done = queue.complete(token, queued.pk, report(2))
    assert done.status == "finished" and done.failure_reason == ""
    assert LeaderboardEntry.objects.filter(submission=queued).count() == 1


def test_no_late_result_after_a_reported_failure_a_cancel_or_for_an_attempt_never_made(
    token, queued, participant, demo_challenge
):
    first = queue.claim_next(token, "w1")
    queue.complete(token, queued.pk, queue.Completion(attempt=first.attempt, error="bad input"))
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(first.attempt))

    phase = demo_challenge.phases.get(codename="dev")
    other = submit(participant, phase, upload(b'{"dev-a0": 0}'), "p.json", SubmissionFields(method_name="m2"))
    claimed = queue.claim_next(token, "w1")
    assert claimed.pk == other.pk
    with pytest.raises(LeaseLost):
        queue.complete(token, other.pk, report(claimed.attempt + 1))  # an attempt that never ran
    demo_challenge.allow_cancel_running_submissions = True
    demo_challenge.save(update_fields=["allow_cancel_running_submissions"])
    lifecycle.cancel(participant, other)
    with pytest.raises(LeaseLost):
        queue.complete(token, other.pk, report(claimed.attempt))
    assert Submission.objects.get(pk=other.pk).status == "cancelled"


def test_a_token_of_another_queue_cannot_report(token, queued):
    first = queue.claim_next(token, "w1")
    expire(first)
    Submission.objects.filter(pk=queued.pk).update(queue_name="challenge-999")
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(first.attempt))


def test_a_cancel_between_the_check_and_the_write_refuses_the_result(
    token, queued, participant, demo_challenge, monkeypatch
):
    """complete() checks the row unlocked, then writes with one guarded UPDATE: a cancel landing in
    between must make that UPDATE match nothing, so the result is refused and nothing is recorded."""
    claimed = queue.claim_next(token, "w1")
    demo_challenge.allow_cancel_running_submissions = True
    demo_challenge.save(update_fields=["allow_cancel_running_submissions"])
    real = queue.phase_rules.phase_with_challenge

    def cancelled_meanwhile(phase_id: int):
        lifecycle.cancel(participant, Submission.objects.get(pk=queued.pk))
        return real(phase_id)

    monkeypatch.setattr(queue.phase_rules, "phase_with_challenge", cancelled_meanwhile)
    with pytest.raises(LeaseLost):
        queue.complete(token, queued.pk, report(claimed.attempt))
    row = Submission.objects.get(pk=queued.pk)
    assert (row.status, row.output, row.stdout_file.name) == ("cancelled", None, "")
    assert not LeaderboardEntry.objects.filter(submission=queued).exists()


def test_the_guarded_update_takes_a_result_exactly_when_the_rule_says(token, queued, settings):
    """complete()'s UPDATE is SQL built once, not the ORM's filter: it must match :func:`queue._takes_result`
    (and the token's queue) on every state a row can be in, or a result could be taken twice or lost."""
    most = settings.WORKER_MAX_ATTEMPTS
    rows = Submission.objects.filter(pk=queued.pk)
    for status in Submission.Status.values:
        for attempt in (1, 2):
            for expired in (0, most - 1, most):
                for queue_name in (token.queue_name, "elsewhere"):
                    rows.update(status=status, attempt=attempt, expired_leases=expired, queue_name=queue_name)
                    for reported in (1, 2, 3):
                        rows.update(lease_owner="")
                        sub = rows.get()
                        expected = queue_name == token.queue_name and queue._takes_result(sub, reported)
                        taken = queue._record_result(token, queued.pk, reported, {"lease_owner": "probe"})
                        case = (status, attempt, expired, queue_name, reported)
                        assert taken is expected, case
                        assert (rows.get().lease_owner == "probe") is expected, case
