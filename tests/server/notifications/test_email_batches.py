"""The results' e-mails in batches: the runner hands several evaluations' tasks to one call of their handler, which
reads their submissions, subscribers and each reader's rights once and sends over one mail connection; yet every
message is the bytes one task alone sends, every reader still sees only what ResultReader lets them, and a failed
e-mail's task alone is retried."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assay.server import tasks
from assay.server.tasks.models import Task
from tests.factories import make_user, register_team
from tests.server.notifications.test_email_bytes import BODY, fixed_outbox
from tests.server.notifications.test_emails import PRIVATE, evaluate, submit_to

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outbox(settings, monkeypatch):
    return fixed_outbox(settings, monkeypatch)


@pytest.fixture(autouse=True)
def no_daily_limit(demo_challenge):
    demo_challenge.phases.update(max_submissions_per_day=1000, max_submissions_per_month=1000, max_submissions=1000)


def _results(user, challenge, count: int) -> list:
    subs = []
    for _ in range(count):
        sub = submit_to(user, challenge)
        evaluate(sub)
        subs.append(sub)
    return subs


def _expected(sub, user, team, challenge) -> bytes:
    names = dict(title=challenge.title, sub=sub.pk, team=team.name, phase=sub.phase.name)
    body = BODY.format(user=user.get_username(), challenge=challenge.pk, **names)
    subject = "[Assay] {title}: submission {sub} was evaluated".format(**names)
    return mail.EmailMultiAlternatives(subject, body, None, [user.email]).message().as_bytes()


def test_a_batch_of_results_sends_each_email_as_the_same_bytes_and_reads_once_per_batch(
    team, participant, demo_challenge, outbox
):
    counts = []
    for size in (3, 6):
        subs = _results(participant, demo_challenge, size)
        outbox.clear()
        with CaptureQueriesContext(connection) as captured:
            assert tasks.run_due() == size
        counts.append(len(captured.captured_queries))
        assert [m.message().as_bytes() for m in outbox] == [
            _expected(sub, participant, team, demo_challenge) for sub in subs
        ]
    assert counts[0] == counts[1]  # the statements are the batch's, not one set per result
    assert set(Task.objects.values_list("state", "attempts")) == {(Task.State.DONE, 1)}


def test_a_batch_of_two_teams_results_tells_each_reader_only_what_they_may_read(
    team, participant, demo_challenge, host, outbox
):
    """Each recipient's e-mail is cut by their own ResultReader, though the batch shares them: the host (also in
    alice's team here) reads the hidden split, alice and bob never do, and bob hears only of his team's result."""
    from assay.server.teams.models import ParticipantTeamMember

    ParticipantTeamMember.objects.create(team=team, user=host)
    bob = make_user("bob")
    bobs = register_team(demo_challenge, bob, "Team Bob")
    mine, theirs = submit_to(participant, demo_challenge), submit_to(bob, demo_challenge)
    evaluate(mine)
    evaluate(theirs)
    failed = submit_to(participant, demo_challenge)
    evaluate(failed, error="the script crashed")
    tasks.run_due()
    sent = {(m.to[0], m.subject.rsplit("submission ", 1)[1]): m.body for m in outbox}
    assert set(sent) == {
        (participant.email, f"{mine.pk} was evaluated"),
        (host.email, f"{mine.pk} was evaluated"),
        (bob.email, f"{theirs.pk} was evaluated"),
        (participant.email, f"{failed.pk} failed"),
        (host.email, f"{failed.pk} failed"),
    }
    assert f"private: Accuracy = {PRIVATE}" in sent[host.email, f"{mine.pk} was evaluated"]
    for (to, _subject), body in sent.items():
        if to != host.email:
            assert str(PRIVATE) not in body and "private:" not in body
    assert "the script crashed" in sent[participant.email, f"{failed.pk} failed"]
    assert bobs.name in sent[bob.email, f"{theirs.pk} was evaluated"]


def test_a_failed_email_in_a_batch_is_retried_alone(team, participant, demo_challenge, outbox, monkeypatch):
    from assay.server.notifications.services import mail as mail_service

    real, calls = mail_service.send_mail, []

    def second_fails(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise ConnectionError("mail server hung up")
        return real(*args, **kwargs)

    monkeypatch.setattr(mail_service, "send_mail", second_fails)
    subs = _results(participant, demo_challenge, 3)
    assert tasks.run_due() == 3
    assert [m.subject.split()[-3] for m in outbox] == [str(subs[0].pk), str(subs[2].pk)]
    states = {row.payload["submission"]: (row.state, row.attempts) for row in Task.objects.all()}
    assert states == {
        subs[0].pk: (Task.State.DONE, 1),
        subs[1].pk: (Task.State.QUEUED, 1),
        subs[2].pk: (Task.State.DONE, 1),
    }
    outbox.clear()
    assert tasks.run_due(now=timezone.now() + dt.timedelta(hours=2)) == 1
    assert [m.subject.split()[-3] for m in outbox] == [str(subs[1].pk)]
