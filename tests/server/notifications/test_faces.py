"""The faces of notifications: one journey through the real HTTP protocol (a participant submits over /api/v1,
a worker claims and completes over /api/v1/worker, the runner drains: the e-mail is in the outbox and the
signed webhook reached a receiver on loopback), the API's webhook routes with bad input, and the web pages."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from rest_framework.test import APIClient

from assay.server import tasks
from assay.server.notifications.models import NotificationSettings, Webhook, WebhookDelivery
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import client_for, upload

from .receiver import Receiver

pytestmark = pytest.mark.django_db
GOOD = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    r = Receiver()
    yield r
    r.stop()


def test_a_submission_evaluated_over_http_sends_its_email_and_a_signed_webhook(
    team, participant, demo_challenge, host, receiver
):
    host_api = client_for(host)
    made = host_api.post(
        f"/api/v1/challenges/{demo_challenge.pk}/webhooks",
        {"url": receiver.start(), "events": ["submission.finished"]},
        format="json",
    )
    assert made.status_code == 201, made.content
    receiver.secret = made.json()["secret"]
    dev = demo_challenge.phases.get(codename="dev")
    sent = client_for(participant).post(
        f"/api/v1/phases/{dev.pk}/submissions", {"input_file": upload(b'{"dev-a0": 1}')}, format="multipart"
    )
    assert sent.status_code == 201, sent.content
    worker = APIClient()
    worker.credentials(HTTP_AUTHORIZATION=f"Bearer {create_worker_token(None, 'w')[1]}")
    job = worker.post("/api/v1/worker/claim", {"worker_id": "w1"}, format="json").json()["job"]
    done = worker.post(
        f"/api/v1/worker/jobs/{job['submission_id']}/complete",
        {"attempt": job["attempt"], "output": GOOD},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert mail.outbox == [] and receiver.received == []  # the worker's request sent nothing itself
    tasks.run_due()
    [message] = mail.outbox
    assert message.to == [participant.email] and "Accuracy = 0.75" in message.body
    [got] = receiver.received
    assert got.signature_ok and json.loads(got.body)["submission"]["id"] == sent.json()["id"]
    log = host_api.get(f"/api/v1/challenges/{demo_challenge.pk}/webhooks/{made.json()['id']}/deliveries").json()
    assert [(d["status_code"], d["attempt"], d["event"]) for d in log["results"]] == [(200, 1, "submission.finished")]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "https://93.184.215.14/h", "events": "submission.finished"}, "events"),
        ({"url": "https://93.184.215.14/h", "events": ["submission.nope"]}, "events"),
        ({"url": "https://93.184.215.14/h"}, "events"),
        ({"url": ["https://93.184.215.14/h"], "events": ["submission.failed"]}, "url"),
        ({"url": "https://93.184.215.14/" + "a" * 3000, "events": ["submission.failed"]}, "url"),
        ({"url": "gopher://93.184.215.14/h", "events": ["submission.failed"]}, None),
        ({"url": "http://169.254.169.254/", "events": ["submission.failed"]}, None),
    ],
)
def test_bad_webhook_bodies_are_refused_with_why(demo_challenge, host, body, field):
    response = client_for(host).post(f"/api/v1/challenges/{demo_challenge.pk}/webhooks", body, format="json")
    assert response.status_code == 400, response.content
    if field:
        assert field in json.dumps(response.json())
    assert not Webhook.objects.exists()


def test_webhook_routes_change_pause_and_remove(demo_challenge, host):
    api = client_for(host)
    base = f"/api/v1/challenges/{demo_challenge.pk}/webhooks"
    made = api.post(base, {"url": "https://93.184.215.14/h", "events": ["submission.failed"]}, format="json").json()
    assert made["secret"].startswith("whsec_") and made["active"] is True
    changed = api.patch(f"{base}/{made['id']}", {"active": False, "events": ["submission.finished"]}, format="json")
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert changed.json()["events"] == ["submission.finished"]
    assert api.patch(f"{base}/{made['id']}", [1, 2], format="json").status_code == 400
    assert api.get(base).json()["count"] == 1
    assert api.delete(f"{base}/{made['id']}").status_code == 204
    assert api.get(f"{base}/{made['id']}").status_code == 404


def test_my_notification_settings_on_the_api_and_the_web(client, participant):
    api = client_for(participant)
    assert api.get("/api/v1/notification-settings").json() == {"submission_emails": True}
    assert api.patch("/api/v1/notification-settings", {"submission_emails": "maybe"}, format="json").status_code == 400
    assert api.patch("/api/v1/notification-settings", {"submission_emails": False}, format="json").json() == {
        "submission_emails": False
    }
    client.force_login(participant)
    page = client.get("/account/notifications")
    assert page.status_code == 200 and b'name="submission_emails" checked' not in page.content
    assert client.post("/account/notifications", {"submission_emails": "on"}).status_code == 302
    assert NotificationSettings.objects.get(user=participant).submission_emails is True


def test_the_host_webhooks_page_adds_refuses_shows_the_log_and_asks_before_removing(
    client, demo_challenge, host, settings
):
    client.force_login(host)
    page_url = f"/challenges/{demo_challenge.pk}/host/webhooks"
    refused = client.post(page_url, {"url": "http://10.0.0.1/h", "events": ["submission.failed"]}, follow=True)
    assert b"private network" in refused.content and not Webhook.objects.exists()
    client.post(page_url, {"url": "https://93.184.215.14/h", "events": ["submission.failed", "submission.finished"]})
    hook = Webhook.objects.get()
    WebhookDelivery.objects.create(
        webhook=hook, delivery_id="d-1", event="submission.failed", attempt=2, status_code=500, error="HTTP 500: nope"
    )
    page = client.get(page_url)
    assert page.status_code == 200
    for text in (hook.secret, "https://93.184.215.14/h", "HTTP 500: nope", "No deliveries yet"):
        assert (text.encode() in page.content) == (text != "No deliveries yet")
    asked = client.post(f"{page_url}/{hook.pk}/delete")
    assert asked.status_code == 200 and b"Remove the webhook" in asked.content and Webhook.objects.exists()
    client.post(f"{page_url}/{hook.pk}/delete", {"confirmed": "yes"})
    assert not Webhook.objects.exists()
