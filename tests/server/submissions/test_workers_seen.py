"""Workers seen on a challenge's queue: the service, the host's pages and ``GET /api/v1/challenges/<id>/workers``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from assay.server.challenges.models import Challenge
from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import authenticate_worker, create_worker_token
from assay.server.submissions.services.workers_seen import SEEN_MINUTES, workers_for
from tests.factories import client_for, upload

pytestmark = pytest.mark.django_db


def test_no_worker_seen_says_submissions_wait(demo_challenge, team, participant):
    create_worker_token(None, "never-used")  # a token that never connected is no worker
    submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "p.json", SubmissionFields())
    seen = workers_for(demo_challenge)
    assert (seen.queue_name, seen.platform, seen.online, seen.waiting) == ("default", True, False, 1)


def test_a_worker_is_seen_with_the_job_it_runs_and_forgotten_after_the_window(demo_challenge, team, participant):
    row, token = create_worker_token(None, "gpu-box")
    sub = submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "p.json", SubmissionFields())
    assert queue.claim_next(authenticate_worker(token), "gpu-box/pid-7").pk == sub.pk
    seen = workers_for(demo_challenge)
    assert seen.online and seen.waiting == 0
    [worker] = seen.workers
    assert worker.name == "gpu-box" and worker.other_jobs == 0
    assert [(j.submission_id, j.worker_id, j.attempt) for j in worker.jobs] == [(sub.pk, "gpu-box/pid-7", 1)]
    later = timezone.now() + dt.timedelta(minutes=SEEN_MINUTES, seconds=1)
    assert workers_for(demo_challenge, now=later).workers == []


def test_a_revoked_token_and_another_queue_do_not_count(demo_challenge, host):
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    demo_challenge.refresh_from_db()
    own, _ = create_worker_token(host, "host-box", demo_challenge)
    platform, _ = create_worker_token(None, "platform-box")
    WorkerToken.objects.filter(pk__in=[own.pk, platform.pk]).update(last_used_at=timezone.now())
    seen = workers_for(demo_challenge)
    assert (seen.queue_name, seen.platform) == (f"challenge-{demo_challenge.pk}", False)
    assert [w.name for w in seen.workers] == ["host-box"]
    WorkerToken.objects.filter(pk=own.pk).update(revoked_at=timezone.now())
    assert workers_for(demo_challenge).workers == []


def test_the_host_pages_show_workers_and_others_get_404(demo_challenge, host, team, participant):
    web = Client()
    web.force_login(host)
    page = web.get(f"/challenges/{demo_challenge.pk}/host/")
    assert page.status_code == 200 and b'id="no-workers"' in page.content
    row, _ = create_worker_token(None, "gpu-box")
    WorkerToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    for url in (f"/challenges/{demo_challenge.pk}/host/", f"/challenges/{demo_challenge.pk}/host/workers"):
        page = web.get(url)
        assert page.status_code == 200 and b"gpu-box" in page.content and b'id="no-workers"' not in page.content
    web.force_login(participant)
    assert web.get(f"/challenges/{demo_challenge.pk}/host/workers").status_code == 404


def test_api_answers_hosts_only(demo_challenge, host, participant, team):
    row, _ = create_worker_token(None, "gpu-box")
    WorkerToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    url = f"/api/v1/challenges/{demo_challenge.pk}/workers"
    got = client_for(host).get(url)
    assert got.status_code == 200
    body = got.json()
    assert (body["online"], body["platform"], body["minutes"]) == (True, True, SEEN_MINUTES)
    assert [w["name"] for w in body["workers"]] == ["gpu-box"] and body["workers"][0]["jobs"] == []
    assert client_for(participant).get(url).status_code == 403
    assert client_for().get(url).status_code == 401
    assert client_for(host).get("/api/v1/challenges/999999/workers").status_code == 404
