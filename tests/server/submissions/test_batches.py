"""The batched worker protocol: several jobs per claim, several results per complete — each result still
taken exactly once, a refused one leaving the others as they are — over HTTP and through the services."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services import queue
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload
from tests.server.submissions.test_worker_e2e import slow_challenge  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

GOOD = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}


@pytest.fixture
def token(admin_user, demo_challenge):
    return create_worker_token(admin_user, "batch worker")


@pytest.fixture
def worker(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[1]}")
    return client


@pytest.fixture
def four(team, participant, demo_challenge) -> list[Submission]:
    phase = demo_challenge.phases.get(codename="dev")
    phase.max_concurrent_submissions_allowed = 10
    phase.save(update_fields=["max_concurrent_submissions_allowed"])
    return [
        submit(participant, phase, upload(b'{"dev-a0": %d}' % i), "preds.json", SubmissionFields(method_name=f"m{i}"))
        for i in range(4)
    ]


def test_a_claim_leases_up_to_max_jobs_oldest_first_and_old_workers_still_get_one(worker, four):
    answer = worker.post("/api/v1/worker/claim", {"worker_id": "w1", "max_jobs": 3}, format="json")
    assert answer.status_code == 200
    jobs = answer.json()["jobs"]
    assert [j["submission_id"] for j in jobs] == [s.pk for s in four[:3]]
    assert all(j["attempt"] == 1 and j["submission_file"]["content"] for j in jobs)  # small files ride inline
    assert set(Submission.objects.filter(status="running").values_list("pk", flat=True)) == {s.pk for s in four[:3]}
    single = worker.post("/api/v1/worker/claim", {"worker_id": "w2"}, format="json").json()
    assert single["job"]["submission_id"] == four[3].pk  # the one-job answer, unchanged
    assert worker.post("/api/v1/worker/claim", {"worker_id": "w3", "max_jobs": 2}, format="json").status_code == 204


@pytest.mark.parametrize("max_jobs", [0, queue.MAX_JOBS_PER_CLAIM + 1, "many", None])
def test_a_claim_outside_the_bound_is_refused(worker, four, max_jobs):
    answer = worker.post("/api/v1/worker/claim", {"worker_id": "w1", "max_jobs": max_jobs}, format="json")
    assert answer.status_code == 400 and "max_jobs" in answer.content.decode()
    assert not Submission.objects.filter(status="running").exists()


def test_the_service_bounds_a_claim_whatever_it_is_asked(token, four, monkeypatch):
    monkeypatch.setattr(queue, "MAX_JOBS_PER_CLAIM", 2)
    assert len(queue.claim_several(token[0], "w1", 50)) == 2


def report(job, **extra):
    return {"submission_id": job["submission_id"], "attempt": job["attempt"], "output": GOOD, **extra}


def test_several_results_in_one_call_each_taken_once_and_a_refusal_undoes_nothing(worker, four):
    jobs = worker.post("/api/v1/worker/claim", {"worker_id": "w1", "max_jobs": 4}, format="json").json()["jobs"]
    a, b, c, d = jobs
    body = {
        "results": [
            report(a),
            report(a),  # the same result again: refused, the first stands
            report(b, attempt=b["attempt"] + 1),  # an attempt never leased
            report(c, output={"result": "nonsense"}),  # an unusable result: the submission fails, with why
            {"submission_id": d["submission_id"], "output": GOOD},  # no attempt: this item refused, not the call
        ]
    }
    answer = worker.post("/api/v1/worker/complete", body, format="json")
    assert answer.status_code == 200, answer.content
    got = answer.json()["results"]
    assert [r["submission_id"] for r in got] == [a["submission_id"], a["submission_id"], b["submission_id"],
                                                  c["submission_id"], d["submission_id"]]  # fmt: skip
    assert got[0] == {"submission_id": a["submission_id"], "accepted": True, "status": "finished", "failure_reason": ""}
    assert got[1]["accepted"] is False and got[1]["http_status"] == 409 and got[1]["error"]["code"] == "lease_lost"
    assert got[2]["accepted"] is False and got[2]["http_status"] == 409
    assert got[3]["accepted"] is True and got[3]["status"] == "failed" and "unusable" in got[3]["failure_reason"]
    assert got[4]["accepted"] is False and got[4]["http_status"] == 400 and "attempt" in got[4]["error"]["message"]
    status = dict(Submission.objects.values_list("pk", "status"))
    assert [status[j["submission_id"]] for j in jobs] == ["finished", "running", "failed", "running"]
    assert LeaderboardEntry.objects.filter(submission_id=a["submission_id"]).count() == 1
    again = worker.post("/api/v1/worker/complete", {"results": [report(b), report(d)]}, format="json").json()
    assert [r["status"] for r in again["results"]] == ["finished", "finished"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"results": []},
        {"results": "all of them"},
        {"results": [1, 2]},
        {"results": [{"submission_id": 1, "attempt": 1}] * (queue.MAX_JOBS_PER_CLAIM + 1)},
    ],
)
def test_a_malformed_batch_is_refused_whole_with_why(worker, four, body):
    answer = worker.post("/api/v1/worker/complete", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"
    assert not Submission.objects.exclude(status="submitted").exists()


def test_the_service_refuses_more_results_than_a_claim_can_hand_out(token, four):
    reports = [(s.pk, queue.Completion(attempt=1, output=GOOD)) for s in four] * 5
    with pytest.raises(SubmissionError, match="at most"):
        queue.complete_several(token[0], reports)


def test_the_in_process_transport_answers_a_batch_as_http_does(token, four):
    from assay.server.inprocess_client import InProcessClient
    from assay.worker.client import LeaseLostError, ProtocolError

    client = InProcessClient(token[1])
    jobs = client.claim_several("w1", 3, wait=0)
    assert [j["submission_id"] for j in jobs] == [s.pk for s in four[:3]]
    a, b, c = jobs
    answers = client.complete_several(
        [
            (a["submission_id"], a["attempt"], {"output": GOOD}),
            (a["submission_id"], a["attempt"], {"output": GOOD}),
            (b["submission_id"], b["attempt"], {"output": GOOD, "stdout": 5}),  # not text: refused (400)
            (c["submission_id"], c["attempt"], {"error": "the evaluator crashed"}),
        ]
    )
    assert answers[0] == {"status": "finished", "failure_reason": ""}
    assert isinstance(answers[1], LeaseLostError)
    assert isinstance(answers[2], ProtocolError) and answers[2].status == 400
    assert answers[3] == {"status": "failed", "failure_reason": "the evaluator crashed"}
    assert Submission.objects.get(pk=b["submission_id"]).status == "running"


class Counting:
    """A worker client that records the batches it sends (the real client underneath)."""

    def __init__(self, client) -> None:
        self.client, self.claimed, self.reported = client, [], []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def claim_several(self, worker_id, max_jobs, **kw):
        jobs = self.client.claim_several(worker_id, max_jobs, **kw)
        self.claimed.append((max_jobs, len(jobs)))
        return jobs

    def complete_several(self, reports):
        self.reported.append([sid for sid, _, _ in reports])
        return self.client.complete_several(reports)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["http", "inprocess"])
def test_a_worker_with_slots_claims_and_reports_in_batches(
    live_server, team, participant, demo_challenge, admin_user, tmp_path, transport
):
    import threading

    from django.db import connections

    from assay.server.inprocess_client import InProcessClient
    from assay.worker import Worker, WorkerClient
    from tests.server.submissions.test_worker_e2e import PERFECT, post_submission

    dev = demo_challenge.phases.get(codename="dev")
    dev.max_concurrent_submissions_allowed = 10
    dev.save(update_fields=["max_concurrent_submissions_allowed"])
    sids = [post_submission(participant, dev, PERFECT.read_bytes()) for _ in range(4)]
    sids.append(post_submission(participant, dev, b"[1, 2, 3]"))  # the script refuses it: failed, with why
    _, token = create_worker_token(admin_user, "batches")
    real = InProcessClient(token) if transport == "inprocess" else WorkerClient(live_server.url, token)
    client = Counting(real)
    worker = Worker(client, tmp_path / "w", poll_wait=1, slots=3)

    def run() -> None:
        try:
            worker.run(max_jobs=5)
        finally:
            connections.close_all()
            real.close()  # over HTTP: its kept-alive connection holds a live-server thread's database session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(180)
    assert not thread.is_alive()
    status = dict(Submission.objects.filter(pk__in=sids).values_list("pk", "status"))
    assert [status[s] for s in sids] == ["finished"] * 4 + ["failed"]
    assert client.claimed[0] == (3, 3)  # one call took three jobs
    reported = [sid for batch in client.reported for sid in batch]
    assert sorted(reported) == sorted(sids)  # each result sent once
    assert LeaderboardEntry.objects.filter(submission_id__in=sids).count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["http", "inprocess"])
def test_a_worker_with_slots_keeps_every_lease_and_hands_every_job_back_when_stopped(
    live_server,
    slow_challenge,  # noqa: F811 - the fixture imported above
    participant,
    admin_user,
    tmp_path,
    settings,
    transport,
):
    import json
    import threading
    import time

    from django.db import connections

    from assay.server.inprocess_client import InProcessClient
    from assay.worker import Worker, WorkerClient
    from tests.factories import register_team
    from tests.server.submissions.test_worker_e2e import PERFECT, post_submission, wait_for

    settings.WORKER_LEASE_SECONDS = 3
    register_team(slow_challenge, participant, "Team Slots")
    dev = slow_challenge.phases.get(codename="dev")
    payload = json.loads(PERFECT.read_text())
    payload["sleep"] = 600  # far past the join below: only the stop ends the jobs
    sids = [post_submission(participant, dev, json.dumps(payload).encode()) for _ in range(2)]
    _, token = create_worker_token(admin_user, "slots")
    client = InProcessClient(token) if transport == "inprocess" else WorkerClient(live_server.url, token)
    worker = Worker(client, tmp_path / "w", poll_wait=1, slots=2)

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()
            client.close()  # over HTTP: its kept-alive connection holds a live-server thread's database session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    running = Submission.objects.filter(pk__in=sids, status="running")
    wait_for(lambda: running.count() == 2, what="both claimed")
    time.sleep(4.5)  # past the 3 s lease: only heartbeats of both jobs keep them
    assert running.filter(attempt=1, expired_leases=0).count() == 2
    worker.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert (
        list(Submission.objects.filter(pk__in=sids).values_list("status", "expired_leases")) == [("submitted", 0)] * 2
    )
