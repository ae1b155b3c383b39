"""A challenge no administrator approved is not evaluated on the platform's workers: its submissions
wait, say why, and are evaluated once it is approved (the claim is woken). Its hosts' own machines
(a remote challenge's queue) are not the platform's, so they are not held back."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from assay.server.challenges.models import Challenge
from assay.server.submissions.models import Submission
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload


def _submit(participant, challenge, content: bytes = b'{"dev-a0": 1}') -> Submission:
    phase = challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(content), "preds.json", SubmissionFields())


def _unapprove(challenge) -> None:
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=False)
    challenge.refresh_from_db()


def _worker(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _claim(client, worker_id: str = "w1"):
    return client.post("/api/v1/worker/claim", {"worker_id": worker_id}, format="json")


@pytest.mark.django_db
def test_platform_workers_skip_an_unapproved_challenge_until_it_is_approved(
    admin_user, demo_challenge, team, participant, host, host_team, media
):
    from django.utils import timezone

    from assay.bundle import read_bundle
    from assay.server.challenges.models import Participation
    from assay.server.challenges.services.bundle_import import import_bundle
    from tests.factories import DEMO_BUNDLE

    with read_bundle(DEMO_BUNDLE) as bundle:
        unapproved = import_bundle(bundle, host_team=host_team).challenge  # a new challenge: not approved
    Participation.objects.create(challenge=unapproved, team=team, terms_accepted_at=timezone.now())
    held = _submit(participant, unapproved)
    later = _submit(participant, demo_challenge)  # approved, submitted after: it does not wait behind
    worker = _worker(create_worker_token(admin_user, "platform")[1])

    reader = APIClient()
    reader.force_authenticate(participant)
    body = reader.get(f"/api/v1/submissions/{held.pk}").json()
    assert body["status"] == "submitted" and body["waiting_for"] == queue.WAITING_FOR_APPROVAL
    assert reader.get(f"/api/v1/submissions/{later.pk}").json()["waiting_for"] is None
    from assay.server.submissions.services.my_submissions import queue_position

    assert queue_position(held) is None and queue_position(later) == 1  # the held one is not in line

    response = _claim(worker)
    assert response.status_code == 200 and response.json()["job"]["submission_id"] == later.pk
    assert _claim(worker, "w2").status_code == 204  # the unapproved challenge's job is not handed out
    assert Submission.objects.get(pk=held.pk).status == "submitted"
    assert queue.peek("default") is None  # nor offered to EvalAI's readers of the queue
    assert worker.get(f"/api/jobs/submission/{held.pk}").status_code == 406

    web = Client()
    web.force_login(host)
    page = web.get(f"/challenges/{unapproved.pk}/host/submissions").content.decode()
    assert "waiting for an administrator to approve the challenge" in page
    settings_page = web.get(f"/challenges/{unapproved.pk}/host/").content.decode()
    assert "assay host bundle test" in settings_page

    unapproved.approved_by_admin = True
    unapproved.save()  # as the admin site does
    response = _claim(worker, "w3")
    assert response.status_code == 200 and response.json()["job"]["submission_id"] == held.pk
    assert reader.get(f"/api/v1/submissions/{held.pk}").json()["waiting_for"] is None


@pytest.mark.django_db
def test_a_remote_challenge_s_own_workers_are_not_held_back(demo_challenge, team, participant, host):
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True, approved_by_admin=False)
    demo_challenge.refresh_from_db()
    sub = _submit(participant, demo_challenge)
    assert sub.queue_name == f"challenge-{demo_challenge.pk}" and queue.waiting_for(sub) is None
    remote = _worker(create_worker_token(host, "host machine", demo_challenge)[1])
    response = _claim(remote)
    assert response.status_code == 200 and response.json()["job"]["submission_id"] == sub.pk


@pytest.mark.django_db(transaction=True)
def test_approving_wakes_a_waiting_claim(admin_user, demo_challenge, team, participant, settings):
    from .test_claim_wakeup import Waiting

    settings.WORKER_CLAIM_RECHECK_SECONDS = 600  # past the join below: only the announcement can wake it
    settings.WORKER_LONG_POLL_SECONDS = 600
    _unapprove(demo_challenge)
    sub = _submit(participant, demo_challenge)
    token = create_worker_token(admin_user, "platform")[0]
    waiting = Waiting(token, "w1", wait=600)
    time.sleep(1)
    assert waiting.thread.is_alive()
    demo_challenge.approved_by_admin = True
    demo_challenge.save(update_fields=["approved_by_admin"])
    claimed = waiting.join(60)
    assert claimed is not None and claimed.pk == sub.pk


@pytest.mark.django_db
@pytest.mark.parametrize("approved", [True, False])
@pytest.mark.parametrize("remote", [True, False], ids=["remote-queue", "platform-queue"])
def test_the_queue_filter_and_the_waiting_reason_are_one_rule(demo_challenge, team, participant, approved, remote):
    """What the claim is offered (``offered``) and what a submission says it waits for (``waiting_for``)
    come from one approval rule (``held_for_approval``), for either queue and either state."""
    sub = _submit(participant, demo_challenge)
    queue_name = "host-queue-x" if remote else queue.PLATFORM_QUEUE
    Submission.objects.filter(pk=sub.pk).update(queue_name=queue_name)
    Challenge.objects.filter(pk=demo_challenge.pk).update(approved_by_admin=approved)
    sub = Submission.objects.select_related("phase__challenge").get(pk=sub.pk)
    is_offered = queue.offered(queue_name, Submission.objects.filter(pk=sub.pk)).exists()
    reason = queue.waiting_for(sub)
    assert is_offered == (reason is None) == (remote or approved)
    assert queue.held_for_approval(queue_name, approved) == (reason is not None)
