"""E-mails: a finished submission tells its team (only the scores they may read), a failed one says why, the
opt-out is respected, the hosts hear once per window that evaluations keep failing, and an approval tells the
team. Everything goes through the task runner (``tasks.run_due``), never inside the worker's request."""

from __future__ import annotations

import pytest
from django.core import mail

from assay.server import tasks
from assay.server.challenges.models import Participation
from assay.server.challenges.services.participation import set_status
from assay.server.notifications.services.preferences import set_submission_emails
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db
PUBLIC, PRIVATE = 0.4321, 0.9876  # the private split is for the hosts only (visibility 1)


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://assay.example"
    mail.outbox = []
    return mail.outbox


def submit_to(user, challenge, phase="test"):
    return submit(user, challenge.phases.get(codename=phase), upload(b'{"x": 1}'), "preds.json", SubmissionFields())


def evaluate(sub, *, error: str | None = None):
    token = create_worker_token(None, "test")[0]
    claimed = queue.claim_next(token, "test-worker")
    assert claimed is not None and claimed.pk == sub.pk
    splits = {"public": {"Accuracy": PUBLIC, "F1": 0.5}, "private": {"Accuracy": PRIVATE, "F1": 0.5}}
    output = None if error else {"result": [{k: v} for k, v in splits.items()]}
    report = queue.Completion(attempt=claimed.attempt, output=output, error=error, stdout="")
    return queue.complete(token, sub.pk, report)


def test_a_finished_submission_emails_its_team_the_scores_they_may_read(team, participant, demo_challenge, outbox):
    sub = submit_to(participant, demo_challenge)
    evaluate(sub)
    assert outbox == []  # nothing is sent inside the worker's request
    tasks.run_due()
    assert len(outbox) == 1
    message = outbox[0]
    assert message.to == [participant.email]
    assert f"submission {sub.pk} was evaluated" in message.subject
    assert f"public: Accuracy = {PUBLIC}, F1 = 0.5" in message.body
    assert str(PRIVATE) not in message.body and "private" not in message.body
    assert "splits the host keeps hidden are not shown" in message.body
    assert f"https://assay.example/challenges/{demo_challenge.pk}/submissions" in message.body
    assert "https://assay.example/account/notifications" in message.body


def test_a_failed_submission_says_why_and_the_opt_out_is_respected(team, participant, demo_challenge, outbox):
    sub = submit_to(participant, demo_challenge)
    evaluate(sub, error="the script raised KeyError: 'x'")
    tasks.run_due()
    assert len(outbox) == 1 and "failed" in outbox[0].subject
    assert "KeyError: 'x'" in outbox[0].body
    set_submission_emails(participant, False)
    evaluate(submit_to(participant, demo_challenge))
    tasks.run_due()
    assert len(outbox) == 1  # turned off: nothing more


def test_the_opt_out_also_holds_for_emails_already_being_prepared(team, participant, demo_challenge, outbox):
    evaluate(submit_to(participant, demo_challenge))
    set_submission_emails(participant, False)  # after the evaluation, before the runner ran
    tasks.run_due()
    assert outbox == []


def test_hosts_hear_once_per_window_that_evaluations_keep_failing(
    team, participant, demo_challenge, host, outbox, settings
):
    settings.NOTIFY_FAILURE_STREAK = 3
    set_submission_emails(participant, False)  # only the hosts' e-mails below
    demo_challenge.phases.filter(codename="test").update(max_submissions_per_day=100, max_submissions=100)
    for n in range(2):
        evaluate(submit_to(participant, demo_challenge), error=f"failure {n}")
    tasks.run_due()
    assert outbox == []  # two failures are not yet a streak
    evaluate(submit_to(participant, demo_challenge), error="failure 2")
    tasks.run_due()
    assert [m.to for m in outbox] == [[host.email]]
    assert "evaluations keep failing" in outbox[0].subject
    assert "The last 3 evaluations" in outbox[0].body
    assert f"https://assay.example/challenges/{demo_challenge.pk}/host/errors" in outbox[0].body
    evaluate(submit_to(participant, demo_challenge), error="failure 3")
    tasks.run_due()
    assert len(outbox) == 1  # once per window, not once per failure


def test_a_success_breaks_the_streak(team, participant, demo_challenge, outbox, settings):
    settings.NOTIFY_FAILURE_STREAK = 2
    set_submission_emails(participant, False)
    evaluate(submit_to(participant, demo_challenge), error="one")
    evaluate(submit_to(participant, demo_challenge))
    evaluate(submit_to(participant, demo_challenge), error="two")
    tasks.run_due()
    assert outbox == []


def test_approving_a_team_emails_its_members(team, participant, demo_challenge, host, outbox):
    row = Participation.objects.get(challenge=demo_challenge, team=team)
    set_status(host, row, Participation.Status.PENDING)
    tasks.run_due()
    assert outbox == []
    set_status(host, row, Participation.Status.APPROVED)
    set_status(host, row, Participation.Status.APPROVED)  # already approved: no second e-mail
    tasks.run_due()
    assert len(outbox) == 1 and outbox[0].to == [participant.email]
    assert "approved" in outbox[0].subject and "you may submit now" in outbox[0].body


def task_names() -> list[str]:
    from assay.server.tasks.models import Task

    return sorted(Task.objects.values_list("name", flat=True))


def test_a_team_of_one_gets_its_email_from_the_evaluations_task_whose_retry_resends_it(
    team, participant, demo_challenge, outbox, monkeypatch
):
    import datetime as dt

    from django.utils import timezone

    from assay.server.notifications.services import mail as mail_service

    real, down = mail_service.send_mail, {"left": 1}

    def flaky_send(*args, **kwargs):
        if down["left"]:
            down["left"] -= 1
            raise ConnectionError("mail server down")
        return real(*args, **kwargs)

    monkeypatch.setattr(mail_service, "send_mail", flaky_send)
    evaluate(submit_to(participant, demo_challenge))
    assert tasks.run_due() == 1 and outbox == []  # the only delivery, sent by the task itself: it failed
    assert task_names() == ["notifications.evaluated"]  # no e-mail task row: the task's retry is the e-mail's
    tasks.run_due(now=timezone.now() + dt.timedelta(hours=2))
    assert len(outbox) == 1 and outbox[0].to == [participant.email]
    assert task_names() == ["notifications.evaluated"]


def test_more_deliveries_than_one_email_each_go_as_their_own_task(team, participant, demo_challenge, outbox, host):
    from django.contrib.auth import get_user_model

    from assay.server.notifications.models import Webhook
    from assay.server.tasks import queue as task_queue
    from assay.server.teams.models import ParticipantTeamMember

    bob = get_user_model().objects.create_user("bob", "bob@uni.example", "pw")
    ParticipantTeamMember.objects.create(team=team, user=bob)
    evaluate(submit_to(participant, demo_challenge))
    tasks.run_due()
    assert sorted(m.to[0] for m in outbox) == [participant.email, bob.email]
    assert task_names() == ["notifications.email", "notifications.email", "notifications.evaluated"]
    # a team of one with a webhook: the e-mail is not the only delivery, so it is a task of its own too
    ParticipantTeamMember.objects.filter(user=bob).delete()
    Webhook.objects.create(
        challenge=demo_challenge, url="https://hooks.example/x", secret="s", events=["submission.finished"]
    )
    evaluate(submit_to(participant, demo_challenge))
    outbox.clear()
    task_queue.run(task_queue.claim())  # only the evaluation's fan-out, not the deliveries (no network here)
    assert outbox == []
    assert task_names().count("notifications.email") == 3 and "notifications.webhook" in task_names()


def test_a_team_of_ones_email_alone_opens_no_transaction(team, participant, demo_challenge, outbox):
    """Nothing to write (no webhook wants it, no failure, one letter): the evaluation's task only reads and sends."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from assay.server.tasks import queue as task_queue

    evaluate(submit_to(participant, demo_challenge))
    row = task_queue.claim()
    with CaptureQueriesContext(connection) as captured:
        assert task_queue.run(row)
    assert len(outbox) == 1 and outbox[0].to == [participant.email]
    verbs = [q["sql"].split(None, 1)[0].upper() for q in captured.captured_queries]
    assert "SAVEPOINT" not in verbs and "BEGIN" not in verbs and "INSERT" not in verbs
