"""The in-process transport refuses what the worker views refuse, raised as the HTTP client raises it;
what differs between the transports is how files travel.

The whole flow over both transports is in submissions/test_worker_e2e.py; here the refusals, one by one.
"""

from __future__ import annotations

import threading
import time

import pytest
from rest_framework.test import APIClient

from assay.server.inprocess_client import InProcessClient
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token, revoke_worker_token
from assay.worker.client import LeaseLostError, ProtocolError, TokenRefused
from tests.factories import upload

GOOD = {"output": {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}, "stdout": "done\n"}


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields())


@pytest.fixture
def client(admin_user) -> InProcessClient:
    return InProcessClient(create_worker_token(admin_user, "in-process test")[1])


@pytest.mark.django_db
def test_a_job_its_file_and_one_result(client, queued, tmp_path):
    job = client.claim("w1", wait=0)
    assert job["submission_id"] == queued.pk and job["attempt"] == 1
    path = client.download(job["submission_file"]["sha256"], tmp_path / "cache" / "preds.json")
    assert path.read_bytes() == b'{"dev-a0": 1}'
    client.heartbeat(queued.pk, 1)
    assert client.complete(queued.pk, 1, GOOD) == {"status": "finished", "failure_reason": ""}
    with pytest.raises(LeaseLostError):
        client.complete(queued.pk, 1, GOOD)  # exactly once
    with pytest.raises(LeaseLostError):
        client.heartbeat(queued.pk, 1)
    with pytest.raises(ProtocolError) as refused:
        client.download(job["submission_file"]["sha256"], tmp_path / "again")  # no longer held
    assert refused.value.status == 404


@pytest.mark.django_db
def test_a_revoked_token_is_refused_at_once(client, queued, admin_user):
    from assay.server.submissions.models import WorkerToken

    revoke_worker_token(admin_user, WorkerToken.objects.get(name="in-process test"))
    with pytest.raises(TokenRefused):
        client.claim("w1", wait=0)
    assert Submission.objects.get(pk=queued.pk).status == "submitted"


@pytest.mark.django_db
def test_another_queues_token_neither_reports_nor_reads(client, queued, host, demo_challenge, tmp_path):
    job = client.claim("w1", wait=0)
    other = InProcessClient(create_worker_token(None, "another token")[1])  # the platform queue, not its lease
    with pytest.raises(ProtocolError) as refused:
        other.download(job["submission_file"]["sha256"], tmp_path / "x")
    assert refused.value.status == 404
    Submission.objects.filter(pk=queued.pk).update(queue_name="challenge-999")
    with pytest.raises(LeaseLostError):
        client.complete(queued.pk, 1, GOOD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ({"error": "x" * 20001}, "error: longer than 20000 characters"),
        ({"error": "bad\x00byte"}, "error: null characters are not allowed"),
        ({**GOOD, "sandbox": "s" * 501}, "sandbox: longer than 500 characters"),
        ({**GOOD, "stdout": 7}, "stdout: not a string"),
    ],
)
def test_a_malformed_report_is_a_400_as_over_http(client, queued, report, problem):
    client.claim("w1", wait=0)
    with pytest.raises(ProtocolError) as refused:
        client.complete(queued.pk, 1, report)
    assert refused.value.status == 400 and problem in str(refused.value)
    assert Submission.objects.get(pk=queued.pk).status == "running"


@pytest.mark.django_db
@pytest.mark.parametrize("transport", ["inprocess", "http"])
def test_long_logs_are_cut_not_refused(client, queued, settings, transport):
    """One rule (queue.Completion), whichever way the report came."""
    settings.EVALUATION_MAX_OUTPUT_BYTES = 10
    client.claim("w1", wait=0)
    report = {**GOOD, "stderr": "e" * 50}
    if transport == "inprocess":
        assert client.complete(queued.pk, 1, report)["status"] == "finished"
    else:
        http = APIClient(HTTP_AUTHORIZATION=f"Bearer {client.token}")
        answer = http.post(f"/api/v1/worker/jobs/{queued.pk}/complete", {"attempt": 1, **report}, format="json")
        assert answer.status_code == 200 and answer.json()["status"] == "finished"
    stderr = Submission.objects.get(pk=queued.pk).stderr_file.read().decode()
    assert stderr == "e" * 20 + "\n[truncated by the server]"


@pytest.mark.django_db(transaction=True)
def test_stopping_ends_a_waiting_claim_at_once(client, settings):
    settings.WORKER_LONG_POLL_SECONDS = 600  # far past the join below: only the stop can end the claim
    answer: dict = {}

    def claim() -> None:
        answer["job"] = client.claim("w1", wait=600)

    thread = threading.Thread(target=claim)
    thread.start()
    time.sleep(0.5)
    client.stopping.set()
    thread.join(60)
    assert not thread.is_alive() and answer == {"job": None}


@pytest.mark.django_db
def test_over_http_a_small_submission_file_rides_with_the_claim(client, queued, settings):
    import base64

    from assay.server.submissions.services import jobs

    http = APIClient(HTTP_AUTHORIZATION=f"Bearer {client.token}")
    job = http.post("/api/v1/worker/claim", {"worker_id": "w1"}, format="json").json()["job"]
    assert base64.b64decode(job["submission_file"]["content"]) == b'{"dev-a0": 1}'
    assert "content" not in (job["evaluation_script"] or {})  # the challenge's files are cached by the worker
    Submission.objects.filter(pk=queued.pk).update(input_file_size=jobs.INLINE_BYTES + 1)
    sub = Submission.objects.get(pk=queued.pk)
    assert "content" not in jobs.with_inline_file(jobs.job_payload(sub), sub)["submission_file"]


@pytest.mark.django_db
def test_a_held_jobs_submission_file_is_found_in_one_statement(client, queued, django_assert_num_queries):
    from assay.server.submissions.models import WorkerToken
    from assay.server.submissions.services import jobs

    job = client.claim("w1", wait=0)
    token = WorkerToken.objects.get(name="in-process test")
    with django_assert_num_queries(1):  # every download of a job's file: one compiled query, no ORM build
        found = jobs.file_for_worker(token, job["submission_file"]["sha256"])
    assert found is not None and found.name == Submission.objects.get(pk=queued.pk).input_file.name
    assert jobs.file_for_worker(token, "0" * 64) is None  # a hash no held job has: nothing
