"""Outbound webhooks: a finished submission's signed POST reaches a real receiver on loopback (which checks the
signature), a 500 is retried with backoff until it succeeds, redirects are not followed, every attempt is in
the delivery log, and hostile URLs (other schemes, private networks, credentials) are refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from assay.server import tasks
from assay.server.notifications.models import WebhookDelivery
from assay.server.notifications.services import delivery, webhooks
from assay.server.notifications.services.webhooks import WebhookRefused
from assay.server.teams.models import HostTeamMember

from .receiver import Receiver
from .test_emails import PRIVATE, PUBLIC, evaluate, submit_to

pytestmark = pytest.mark.django_db
EVENTS = ["submission.finished", "submission.failed"]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.SITE_URL = "https://assay.example"
    r = Receiver()
    yield r
    r.stop()


def hook_for(host, challenge, receiver, events=EVENTS):
    url = receiver.start()
    hook = webhooks.create(host, challenge, url, events)
    receiver.secret = hook.secret
    return hook


def later(hours: float):
    return timezone.now() + dt.timedelta(hours=hours)


def test_a_finished_submission_posts_a_signed_webhook(team, participant, demo_challenge, host, receiver):
    hook = hook_for(host, demo_challenge, receiver)
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
    sub = submit_to(participant, demo_challenge)
    evaluate(sub)
    assert receiver.received == []  # not inside the worker's request
    tasks.run_due()
    [got] = receiver.received
    assert got.signature_ok
    assert got.headers["Assay-Event"] == "submission.finished" and got.headers["Content-Type"] == "application/json"
    assert delivery.verify(hook.secret, got.headers["Assay-Signature"], got.body)
    assert not delivery.verify(hook.secret, got.headers["Assay-Signature"], got.body + b" ")
    assert not delivery.verify("whsec_other", got.headers["Assay-Signature"], got.body)
    body = json.loads(got.body)
    assert body["event"] == "submission.finished" and body["id"] == got.headers["Assay-Delivery"]
    assert body["challenge"]["id"] == demo_challenge.pk and body["submission"]["id"] == sub.pk
    assert body["submission"]["team"]["name"] == "Team Alice"
    # the hosts read every split, so their webhook carries the private one too
    assert {"public": {"Accuracy": PUBLIC, "F1": 0.5}} in body["submission"]["result"]
    assert {"private": {"Accuracy": PRIVATE, "F1": 0.5}} in body["submission"]["result"]
    [logged] = WebhookDelivery.objects.all()
    assert (logged.status_code, logged.attempt, logged.error, logged.event) == (200, 1, "", "submission.finished")


def test_a_500_is_retried_with_backoff_until_it_succeeds(team, participant, demo_challenge, host, receiver):
    hook_for(host, demo_challenge, receiver)
    receiver.answers = [500, 503]
    evaluate(submit_to(participant, demo_challenge), error="crashed")
    tasks.run_due()
    assert len(receiver.received) == 1  # failed: waits for its backoff, not retried at once
    tasks.run_due(now=later(1))
    tasks.run_due(now=later(3))
    assert len(receiver.received) == 3 and all(r.signature_ok for r in receiver.received)
    assert len({r.headers["Assay-Delivery"] for r in receiver.received}) == 1  # one delivery, three attempts
    assert json.loads(receiver.received[0].body)["event"] == "submission.failed"
    log = list(WebhookDelivery.objects.order_by("attempt").values_list("attempt", "status_code"))
    assert log == [(1, 500), (2, 503), (3, 200)]
    first = WebhookDelivery.objects.get(attempt=1)
    assert first.error.startswith("the receiver answered HTTP 500: xxx") and len(first.error) < 400


def test_a_redirect_is_not_followed_and_a_removed_hook_stops_retrying(
    team, participant, demo_challenge, host, receiver
):
    hook = hook_for(host, demo_challenge, receiver)
    receiver.answers = [(302, {"Location": "http://169.254.169.254/latest/meta-data"})]
    evaluate(submit_to(participant, demo_challenge))
    tasks.run_due()
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get().error.startswith("the receiver answered a redirect (not followed)")
    webhooks.delete(host, hook)
    assert tasks.run_due(now=later(1)) == 1  # the retry finds no webhook and ends quietly
    assert len(receiver.received) == 1


def test_only_chosen_events_are_sent_and_a_slow_receiver_times_out(
    team, participant, demo_challenge, host, receiver, settings
):
    hook_for(host, demo_challenge, receiver, events=["submission.failed"])
    evaluate(submit_to(participant, demo_challenge))  # finished: not chosen
    tasks.run_due()
    assert receiver.received == []
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    receiver.delay = 2
    evaluate(submit_to(participant, demo_challenge), error="boom")
    tasks.run_due()
    assert WebhookDelivery.objects.get().error == "no answer within 0.5 s"


def test_a_hook_whose_host_left_delivers_nothing(team, participant, demo_challenge, host, receiver):
    hook_for(host, demo_challenge, receiver)
    HostTeamMember.objects.filter(user=host).delete()
    evaluate(submit_to(participant, demo_challenge))
    tasks.run_due()
    assert receiver.received == []
    assert "no longer a host" in WebhookDelivery.objects.get().error


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://example.org/hook", "starts with http"),
        ("javascript:alert(1)", "starts with http"),
        ("file:///etc/passwd", "starts with http"),
        ("http://", "no host"),
        ("https://user:secret@example.org/hook", "no user name or password"),
        ("http://example.org/ hook", "no spaces"),
        ("http://example.org:99999/", "cannot be read"),
        ("http://example.org/" + "a" * 2000, "at most 2000"),
        ("http://127.0.0.1:8000/hook", "private network"),
        ("http://localhost/hook", "private network"),
        ("http://10.1.2.3/hook", "private network"),
        ("http://192.168.0.1/hook", "private network"),
        ("http://169.254.169.254/latest/meta-data", "private network"),
        ("http://[::1]/hook", "private network"),
        ("http://[::ffff:127.0.0.1]/hook", "private network"),
        ("http://0.0.0.0/hook", "private network"),
        ("http://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_hostile_urls_are_refused(url, why, demo_challenge, host):
    with pytest.raises(WebhookRefused, match=why):
        webhooks.create(host, demo_challenge, url, EVENTS)


def test_events_are_checked_and_only_hosts_manage_webhooks(demo_challenge, host, participant, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(WebhookRefused, match="at least one event"):
        webhooks.create(host, demo_challenge, "http://127.0.0.1/h", [])
    with pytest.raises(WebhookRefused, match="unknown event 'submission.deleted'"):
        webhooks.create(host, demo_challenge, "http://127.0.0.1/h", ["submission.deleted"])
    with pytest.raises(WebhookRefused) as refused:
        webhooks.create(participant, demo_challenge, "http://127.0.0.1/h", EVENTS)
    assert refused.value.status == 403
    hook = webhooks.create(host, demo_challenge, "http://127.0.0.1/h", EVENTS)
    with pytest.raises(WebhookRefused):
        webhooks.update(participant, hook, active=False)
    with pytest.raises(WebhookRefused):
        webhooks.webhook_of(participant, demo_challenge, hook.pk)
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRefused, match="private network"):
        webhooks.update(host, hook, url="http://127.0.0.1/other")


def test_a_target_that_turned_private_is_refused_at_delivery(
    team, participant, demo_challenge, host, receiver, settings
):
    hook_for(host, demo_challenge, receiver)
    settings.WEBHOOKS_ALLOW_PRIVATE = False  # e.g. its name now resolves into the private network
    evaluate(submit_to(participant, demo_challenge))
    tasks.run_due()
    assert receiver.received == []
    assert "private network" in WebhookDelivery.objects.get().error
