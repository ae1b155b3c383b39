"""The queue in the database: leases, heartbeats, expiry, exactly-once results — through the HTTP API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db

GOOD = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}], "submission_result": {"Accuracy": 0.75}}


@pytest.fixture
def worker(admin_user, demo_challenge):
    _, token = create_worker_token(admin_user, "test worker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name="m1"))


def claim(client, worker_id="w1"):
    response = client.post("/api/v1/worker/claim", {"worker_id": worker_id}, format="json")
    return None if response.status_code == 204 else response.json()["job"]


def complete(client, job, **report):
    body = {"attempt": job["attempt"], "output": GOOD, "stdout": "hello\n", "stderr": "", **report}
    return client.post(f"/api/v1/worker/jobs/{job['submission_id']}/complete", body, format="json")


def test_claim_describes_the_job_and_leases_it(worker, queued):
    job = claim(worker)
    assert job["submission_id"] == queued.pk and job["attempt"] == 1
    assert job["phase"]["codename"] == "dev"
    assert job["splits"] == {"public": ["Accuracy", "F1"]}
    assert job["submission_file"]["sha256"] == queued.input_file_sha256
    assert job["annotation"]["sha256"] and job["evaluation_script"]["sha256"]
    assert job["submission_metadata"]["method_name"] == "m1"
    queued.refresh_from_db()
    assert queued.status == "running" and queued.lease_owner == "w1"
    assert claim(worker, "w2") is None  # nothing else waiting


def test_files_by_hash_only_for_leased_jobs(worker, queued, media):
    sha = queued.input_file_sha256
    assert worker.get(f"/api/v1/worker/files/{sha}").status_code == 404  # not leased yet
    job = claim(worker)
    for info in (job["submission_file"], job["annotation"], job["evaluation_script"]):
        response = worker.get(f"/api/v1/worker/files/{info['sha256']}")
        assert response.status_code == 200
        assert len(b"".join(response.streaming_content)) == info["size"]
    assert worker.get("/api/v1/worker/files/" + "0" * 64).status_code == 404


def test_complete_writes_entries_files_and_status_once(worker, queued, media):
    job = claim(worker)
    response = complete(worker, job)
    assert response.status_code == 200 and response.json()["status"] == "finished"
    queued.refresh_from_db()
    assert queued.status == "finished" and queued.completed_at and queued.execution_time is not None
    assert (media / queued.stdout_file.name).read_text() == "hello\n"
    assert json.loads((media / queued.submission_result_file.name).read_text()) == {"Accuracy": 0.75}
    entry = LeaderboardEntry.objects.get(submission=queued)
    assert entry.result == {"Accuracy": 0.75, "F1": 0.5}
    again = complete(worker, job)  # a duplicate is refused without harm
    assert again.status_code == 409 and again.json()["error"]["code"] == "lease_lost"
    assert LeaderboardEntry.objects.filter(submission=queued).count() == 1


def test_expired_lease_is_reclaimed_and_late_result_rejected_once_a_later_attempt_completed(worker, queued):
    first = claim(worker, "w1")
    Submission.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    second = claim(worker, "w2")
    assert second["submission_id"] == queued.pk and second["attempt"] == 2
    hb = worker.post(f"/api/v1/worker/jobs/{queued.pk}/heartbeat", {"attempt": 1}, format="json")
    assert hb.status_code == 409
    assert complete(worker, second).status_code == 200
    assert complete(worker, first).status_code == 409  # the lost attempt's result comes after a completed one
    assert LeaderboardEntry.objects.filter(submission=queued).count() == 1


def test_too_many_lost_leases_fail_the_submission(worker, queued, settings):
    settings.WORKER_MAX_ATTEMPTS = 2
    claim(worker)
    Submission.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    claim(worker)
    Submission.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert claim(worker) is None
    queued.refresh_from_db()
    assert queued.status == "failed" and "lost 2 times" in queued.failure_reason


def test_heartbeat_renews_and_release_requeues(worker, queued):
    job = claim(worker)
    before = Submission.objects.get(pk=queued.pk).lease_expires_at
    hb = worker.post(f"/api/v1/worker/jobs/{queued.pk}/heartbeat", {"attempt": 1}, format="json")
    assert hb.status_code == 200
    assert Submission.objects.get(pk=queued.pk).lease_expires_at >= before
    rel = worker.post(f"/api/v1/worker/jobs/{queued.pk}/release", {"attempt": job["attempt"]}, format="json")
    assert rel.status_code == 200
    queued.refresh_from_db()
    assert queued.status == "submitted" and queued.expired_leases == 0
    assert claim(worker)["attempt"] == 2


def test_cancelled_while_running_stops_the_worker(worker, queued):
    job = claim(worker)
    Submission.objects.filter(pk=queued.pk).update(status="cancelled")
    hb = worker.post(f"/api/v1/worker/jobs/{queued.pk}/heartbeat", {"attempt": job["attempt"]}, format="json")
    assert hb.status_code == 409
    assert complete(worker, job).status_code == 409
    assert not LeaderboardEntry.objects.filter(submission=queued).exists()


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({"nothing": 1}, "no 'result' key"),
        ({"result": [{"nope": {"Accuracy": 1}}]}, "not a split of phase"),
        ({"result": [{"public": {"Accuracy": 1, "Bogus": 2}}]}, "not on the leaderboard"),
        ({"result": [{"public": {"Accuracy": 1}}]}, "missing"),
        ({"result": [{"public": {"Accuracy": "Infinity", "F1": 1}}]}, "must be a finite number"),
        ({"result": [{"public": {"Accuracy": True, "F1": 1}}]}, "not a number"),
        ({"result": "public"}, "expects a list"),
        ([1, 2], "needs 'split'"),
    ],
)
def test_unusable_results_fail_with_the_reason(worker, queued, output, reason):
    job = claim(worker)
    response = complete(worker, job, output=output)
    assert response.status_code == 200 and response.json()["status"] == "failed"
    assert reason in response.json()["failure_reason"]
    assert not LeaderboardEntry.objects.filter(submission=queued).exists()


def test_partial_results_when_the_phase_allows_them(worker, queued):
    queued.phase.is_partial_submission_evaluation_enabled = True
    queued.phase.save()
    job = claim(worker)
    response = complete(worker, job, output={"result": [{"public": {"Accuracy": 1}}]})
    assert response.json()["status"] == "partially_evaluated"
    assert LeaderboardEntry.objects.get(submission=queued).result == {"Accuracy": 1.0}


def test_remote_result_format_and_error_bars(worker, queued):
    job = claim(worker)
    remote = [{"split": "public", "show_to_participant": True, "accuracies": {"Accuracy": 0.5, "F1": 0.25}}]
    assert complete(worker, job, output=remote).json()["status"] == "finished"
    assert LeaderboardEntry.objects.get(submission=queued).result == {"Accuracy": 0.5, "F1": 0.25}


def test_error_bars_are_stored(worker, queued):
    job = claim(worker)
    output = dict(GOOD, error=[{"public": {"error_Accuracy": 0.01, "error_F1": 0.02}}])
    complete(worker, job, output=output)
    assert LeaderboardEntry.objects.get(submission=queued).error == {"error_Accuracy": 0.01, "error_F1": 0.02}


def test_worker_failure_report_keeps_logs(worker, queued, media):
    job = claim(worker)
    response = complete(worker, job, output=None, error="evaluation exceeded the 600 s time limit", stderr="boom")
    assert response.json()["status"] == "failed"
    queued.refresh_from_db()
    assert queued.failure_reason.startswith("evaluation exceeded")
    assert (media / queued.stderr_file.name).read_text() == "boom"


def test_tokens_are_scoped_to_their_queue(worker, queued, demo_challenge, host, admin_user):
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.services.errors import SubmissionError

    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    demo_challenge.refresh_from_db()
    row, remote_token = create_worker_token(host, "host worker", challenge=demo_challenge)
    assert row.queue_name == f"challenge-{demo_challenge.pk}"
    remote = APIClient()
    remote.credentials(HTTP_AUTHORIZATION=f"Bearer {remote_token}")
    assert claim(remote) is None  # the submission was queued on the platform queue before the switch
    job = claim(worker)
    assert remote.get(f"/api/v1/worker/files/{job['submission_file']['sha256']}").status_code == 404
    assert complete(remote, job).status_code == 409
    with pytest.raises(SubmissionError):
        create_worker_token(host, "not staff")  # hosts cannot mint platform tokens


def test_bad_and_revoked_tokens_are_refused(client, worker, admin_user):
    from assay.server.submissions.services.tokens import revoke_worker_token

    anonymous = APIClient()
    assert anonymous.post("/api/v1/worker/claim", {"worker_id": "x"}, format="json").status_code in (401, 403)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer aw_forged")
    assert forged.post("/api/v1/worker/claim", {"worker_id": "x"}, format="json").status_code == 401
    row, token = create_worker_token(admin_user, "to revoke")
    revoke_worker_token(admin_user, row)
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert revoked.post("/api/v1/worker/claim", {"worker_id": "x"}, format="json").status_code == 401
    assert row.token_hash != token and token not in repr(row.__dict__)


def test_malformed_worker_requests_get_one_error_shape(worker, queued):
    for body in ({}, {"worker_id": ""}, {"worker_id": "x" * 500}, {"worker_id": "w", "wait": -1}):
        response = worker.post("/api/v1/worker/claim", body, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    job = claim(worker)
    bad = worker.post(f"/api/v1/worker/jobs/{job['submission_id']}/complete", {"attempt": "x"}, format="json")
    assert bad.status_code == 400 and "attempt" in bad.json()["error"]["message"]
    raw = worker.post("/api/v1/worker/claim", b"{not json", content_type="application/json")
    assert raw.status_code == 400


def test_hosts_manage_their_remote_queue_tokens_over_the_api(demo_challenge, host, participant):
    from assay.server.challenges.models import Challenge

    url = f"/api/v1/challenges/{demo_challenge.pk}/worker-tokens"
    api = APIClient()
    api.force_authenticate(host)
    refused = api.post(url, {"name": "cluster"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_remote"
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    created = api.post(url, {"name": "cluster"}, format="json")
    assert created.status_code == 201 and created.json()["token"].startswith("aw_")
    assert created.json()["queue_name"] == f"challenge-{demo_challenge.pk}"
    listed = api.get(url).json()["results"]  # a page, as every /api/v1 list
    assert [t["name"] for t in listed] == ["cluster"] and "token" not in listed[0]
    other = APIClient()
    other.force_authenticate(participant)
    assert other.get(url).status_code == 403
    assert other.post(url, {"name": "x"}, format="json").status_code == 403
    assert other.delete(f"/api/v1/worker-tokens/{listed[0]['id']}").status_code == 404  # as a missing id
    assert api.delete(f"/api/v1/worker-tokens/{listed[0]['id']}").status_code == 204
    assert api.get(url).json()["results"][0]["revoked_at"] is not None
