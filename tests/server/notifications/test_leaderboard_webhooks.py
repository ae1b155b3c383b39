"""``leaderboard.changed``: a burst of results makes one signed delivery per public leaderboard, carrying only what
an anonymous reader of it sees (never a hosts-only split, a private leaderboard or a private submission), a
refused delivery is retried as the others are; and a result no one listens to writes no task at all."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from assay.server import tasks
from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.notifications.models import BoardSnapshot, WebhookDelivery
from assay.server.notifications.services import board_events, delivery, events, listeners, webhooks
from assay.server.notifications.services.preferences import set_submission_emails
from assay.server.submissions.services import lifecycle, queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.tasks.models import Task
from tests.factories import make_user, register_team, upload

from .receiver import Receiver

pytestmark = pytest.mark.django_db
HIDDEN = 0.97531  # the private split's score: hosts only (visibility 1), never in an event


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.SITE_URL = "https://assay.example"
    r = Receiver()
    yield r
    r.stop()


def hook_for(host, challenge, receiver, events=("leaderboard.changed",)):
    hook = webhooks.create(host, challenge, receiver.start(), list(events))
    receiver.secret = hook.secret
    return hook


def submit_to(user, challenge, *, public: bool = True):
    """A submission to the test phase (private by default there: is_submission_public false), made public."""
    fields = SubmissionFields(is_public=public)
    return submit(user, challenge.phases.get(codename="test"), upload(b'{"x": 1}'), "preds.json", fields)


def evaluate(sub, accuracy: float, *, error: str | None = None):
    token = create_worker_token(None, "test")[0]
    claimed = queue.claim_next(token, "test-worker")
    assert claimed is not None and claimed.pk == sub.pk
    splits = {"public": {"Accuracy": accuracy, "F1": 0.5}, "private": {"Accuracy": HIDDEN, "F1": 0.5}}
    output = None if error else {"result": [{k: v} for k, v in splits.items()]}
    return queue.complete(token, sub.pk, queue.Completion(attempt=claimed.attempt, output=output, error=error))


def drain():
    """Run what is due once the coalescing delay has passed (a retry's backoff has not)."""
    ran = 0
    while done := tasks.run_due(now=timezone.now() + dt.timedelta(seconds=board_events.COALESCE_SECONDS + 1)):
        ran += done  # again: a task written by a handler is due from the moment it was written
    return ran


def events_of(receiver):
    return [json.loads(r.body) for r in receiver.received if r.headers["Assay-Event"] == "leaderboard.changed"]


def public_split(challenge):
    return ChallengePhaseSplit.objects.get(
        phase__challenge=challenge, phase__codename="test", dataset_split__codename="public"
    )


@pytest.fixture
def bob_team(demo_challenge):
    bob = make_user("bob")
    return bob, register_team(demo_challenge, bob, "Team Bob")


def test_a_burst_of_results_makes_one_signed_event_with_only_the_public_board(
    team, participant, bob_team, demo_challenge, host, receiver
):
    hook = hook_for(host, demo_challenge, receiver)
    bob, _ = bob_team
    for user, accuracy in ((participant, 0.6), (bob, 0.8), (participant, 0.9)):
        evaluate(submit_to(user, demo_challenge), accuracy)
    waiting = Task.objects.filter(name=board_events.ANNOUNCE).values_list("key", flat=True)
    keys = {f"{board_events.ANNOUNCE}:{ps.pk}" for ps in ChallengePhaseSplit.objects.filter(phase__codename="test")}
    assert sorted(waiting) == sorted(keys)  # three results: one task per phase-split (the hosts-only one says nothing)
    for row in Task.objects.filter(name=board_events.ANNOUNCE):  # it waits for the burst to end
        assert (row.run_after - row.created_at).total_seconds() >= board_events.COALESCE_SECONDS - 0.01
    assert receiver.received == []
    drain()
    [got] = receiver.received
    assert got.signature_ok and delivery.verify(hook.secret, got.headers["Assay-Signature"], got.body)
    assert got.headers["Assay-Event"] == "leaderboard.changed"
    body = json.loads(got.body)
    assert body["event"] == "leaderboard.changed" and body["id"] == got.headers["Assay-Delivery"]
    assert body["challenge"]["id"] == demo_challenge.pk and body["phase"]["codename"] == "test"
    assert body["split"] == {"id": public_split(demo_challenge).pk, "codename": "public"}
    ranks = [(e["team"]["name"], e["rank"], e["previous_rank"], e["scores"]["Accuracy"]) for e in body["entries"]]
    assert ranks == [("Team Alice", 1, None, 0.9), ("Team Bob", 2, None, 0.8)]
    assert str(HIDDEN) not in got.body.decode() and "private" not in got.body.decode()
    assert body["leaderboard"]["url"].startswith(f"https://assay.example/challenges/{demo_challenge.pk}/leaderboard")
    # nothing new for the public (a worse result of a team): the task runs, no event
    evaluate(submit_to(participant, demo_challenge), 0.1)
    assert not Task.objects.filter(name=board_events.ANNOUNCE, state=Task.State.QUEUED).exists()  # no public row
    drain()
    assert len(receiver.received) == 1
    # bob overtakes: both rows changed rank
    evaluate(submit_to(bob, demo_challenge), 0.95)
    drain()
    second = events_of(receiver)[1]
    moved = [(e["team"]["name"], e["rank"], e["previous_rank"]) for e in second["entries"]]
    assert moved == [("Team Bob", 1, 2), ("Team Alice", 2, 1)]
    assert WebhookDelivery.objects.filter(event="leaderboard.changed", status_code=200).count() == 2


def test_a_private_submission_a_hidden_split_and_a_private_leaderboard_make_no_event(
    team, participant, demo_challenge, host, receiver
):
    hook_for(host, demo_challenge, receiver)
    evaluate(submit_to(participant, demo_challenge, public=False), 0.7)  # private: the public board is as it was
    drain()  # (the phase's first result built its standings: its task ran and found nothing to tell)
    assert receiver.received == []
    evaluate(submit_to(participant, demo_challenge, public=False), 0.75)
    assert not Task.objects.filter(name=board_events.ANNOUNCE, state=Task.State.QUEUED).exists()  # not even a task
    ps = public_split(demo_challenge)
    ps.visibility = ChallengePhaseSplit.Visibility.HOST  # the leaderboard becomes hosts-only
    ps.save()
    evaluate(submit_to(participant, demo_challenge), 0.8)
    assert Task.objects.filter(name=board_events.ANNOUNCE, state=Task.State.QUEUED).exists()  # decided at run
    drain()
    assert receiver.received == []
    assert not BoardSnapshot.objects.filter(phase_split__dataset_split__codename="private").exists()
    # made public again: the event tells what the public now sees; the hosts-only split never had one
    ps.visibility = ChallengePhaseSplit.Visibility.PUBLIC
    ps.save()
    evaluate(submit_to(participant, demo_challenge), 0.85)
    drain()
    [body] = events_of(receiver)
    assert [(e["team"]["name"], e["rank"]) for e in body["entries"]] == [("Team Alice", 1)]
    assert body["entries"][0]["scores"]["Accuracy"] == 0.85 and str(HIDDEN) not in json.dumps(body)


def test_a_host_hiding_the_leader_is_an_event_and_a_refused_delivery_is_retried(
    team, participant, bob_team, demo_challenge, host, receiver
):
    hook_for(host, demo_challenge, receiver)
    bob, _ = bob_team
    evaluate(submit_to(participant, demo_challenge), 0.9)
    evaluate(submit_to(bob, demo_challenge), 0.5)
    drain()
    assert len(receiver.received) == 1
    leader = demo_challenge.phases.get(codename="test").submissions.get(participant_team=team)
    receiver.answers = [500]
    lifecycle.mark(host, leader, flagged=True)
    drain()
    assert len(receiver.received) == 2  # refused: waits for its backoff
    tasks.run_due(now=timezone.now() + dt.timedelta(hours=1))
    first, again = receiver.received[1:]
    assert first.body == again.body and first.headers["Assay-Delivery"] == again.headers["Assay-Delivery"]
    assert again.signature_ok
    body = json.loads(again.body)
    assert [(e["team"]["name"], e["rank"], e["previous_rank"], e["removed"]) for e in body["entries"]] == [
        ("Team Bob", 1, 2, False),
        ("Team Alice", None, 1, True),
    ]
    assert "scores" not in body["entries"][1]  # a row that left the board tells no scores
    log = list(
        WebhookDelivery.objects.filter(event="leaderboard.changed").order_by("id").values_list("attempt", "status_code")
    )
    assert log == [(1, 200), (1, 500), (2, 200)]


def test_no_listener_no_task(team, participant, demo_challenge, host, receiver, settings, django_assert_num_queries):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # no webhook: a result's standings change writes no leaderboard task
    evaluate(submit_to(participant, demo_challenge), 0.5)
    assert not Task.objects.filter(name=board_events.ANNOUNCE).exists()
    assert Task.objects.filter(name=events.EVALUATED).count() == 1  # alice wants e-mails (the default)
    # e-mails off and no webhook: no task row for the result; a failure still counts for the hosts' alert
    set_submission_emails(participant, False)
    evaluate(submit_to(participant, demo_challenge), 0.6)
    assert Task.objects.filter(name=events.EVALUATED).count() == 1
    evaluate(submit_to(participant, demo_challenge), 0, error="boom")
    assert Task.objects.filter(name=events.EVALUATED).count() == 2
    # a webhook that wants results makes it listened to again, at once in this process
    hook = hook_for(host, demo_challenge, receiver, events=("submission.finished",))
    evaluate(submit_to(participant, demo_challenge), 0.7)
    assert Task.objects.filter(name=events.EVALUATED).count() == 3
    webhooks.delete(host, hook)
    set_submission_emails(participant, True)
    evaluate(submit_to(participant, demo_challenge), 0.8)
    assert Task.objects.filter(name=events.EVALUATED).count() == 4
    # asking who listens reads nothing once known: the receiver's only statement is its task's INSERT
    sub = demo_challenge.phases.get(codename="test").submissions.order_by("-pk").first()
    listeners.current()
    with django_assert_num_queries(1):
        events.on_evaluated(None, submission=sub)
    set_submission_emails(participant, False)
    listeners.current()
    split_ids = (public_split(demo_challenge).pk,)
    with django_assert_num_queries(0):
        events.on_evaluated(None, submission=sub)
        # and a standings change on a challenge without a leaderboard.changed webhook: no statement either
        board_events.on_standings_changed(None, phase_id=sub.phase_id, phase_split_ids=split_ids)


def test_a_new_member_who_wants_emails_makes_a_silent_team_listened_to(team, participant, demo_challenge):
    set_submission_emails(participant, False)
    assert team.pk in listeners.current().silent_teams
    from assay.server.teams.models import ParticipantTeamMember

    ParticipantTeamMember.objects.create(team=team, user=make_user("carol"))
    assert team.pk not in listeners.current().silent_teams


def test_a_baseline_is_an_event_and_a_paused_hook_sends_nothing(team, participant, demo_challenge, host, receiver):
    hook = hook_for(host, demo_challenge, receiver)
    sub = submit_to(participant, demo_challenge)
    evaluate(sub, 0.4)
    drain()
    assert len(receiver.received) == 1
    lifecycle.mark(host, sub, baseline=True)  # shown as a baseline, without a rank; the team's row goes
    drain()
    body = events_of(receiver)[1]
    shown = [(e["team"]["name"], e["is_baseline"], e["rank"], e["removed"]) for e in body["entries"]]
    assert shown == [("Team Alice", True, None, False), ("Team Alice", False, None, True)]
    webhooks.update(host, hook, active=False)
    lifecycle.mark(host, sub, baseline=False)
    assert not Task.objects.filter(name=board_events.ANNOUNCE, state=Task.State.QUEUED).exists()  # no one listens
    drain()
    assert len(receiver.received) == 2
