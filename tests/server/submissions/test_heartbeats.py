"""One heartbeat for every job a worker holds (issue 13), and leases that hold while the worker is busy.

Service and route: one request renews N leases in two statements, under the one-job heartbeat's rule (a
token renews only leases it took), and tells each job apart: extended, lost (offered again, its result
still taken if first) or ended (cancelled, completed, not yours). The worker loop: a job keeps its lease
while the loop fetches another job's files, and a job whose lease truly ran out is still reported —
taken when it is the only result, refused (and logged) when another attempt completed first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services import queue
from assay.server.submissions.services.errors import LeaseLost, SubmissionError
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.worker import Worker
from tests.factories import register_team, upload
from tests.server.submissions.test_worker_e2e import (
    PERFECT,
    client_for,
    post_submission,
    slow_challenge,  # noqa: F401 - a fixture
    wait_for,
)

GOOD = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}


@pytest.fixture
def token(admin_user, demo_challenge):
    return create_worker_token(admin_user, "beating worker")


@pytest.fixture
def worker(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[1]}")
    return client


@pytest.fixture
def many(team, participant, demo_challenge) -> list[Submission]:
    phase = demo_challenge.phases.get(codename="dev")
    phase.max_concurrent_submissions_allowed = 20
    phase.save(update_fields=["max_concurrent_submissions_allowed"])
    return [
        submit(participant, phase, upload(b'{"dev-a0": %d}' % i), "preds.json", SubmissionFields(method_name=f"m{i}"))
        for i in range(queue.MAX_JOBS_PER_CLAIM)
    ]


def expire(sid: int) -> None:
    Submission.objects.filter(pk=sid).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


# -- the service ----------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_one_call_renews_sixteen_leases_in_two_statements(token, many):
    held = queue.claim_several(token[0], "w1", queue.MAX_JOBS_PER_CLAIM)
    Submission.objects.filter(pk__in=[s.pk for s in held]).update(lease_expires_at=timezone.now())
    with CaptureQueriesContext(connection) as seen:
        beats = queue.heartbeat_several(token[0], [(s.pk, s.attempt) for s in held])
    assert len(seen.captured_queries) == 2
    assert [(b.submission_id, b.state) for b in beats] == [(s.pk, "extended") for s in held]
    later = timezone.now() + dt.timedelta(seconds=queue.lease_seconds() - 5)
    assert Submission.objects.filter(pk__in=[s.pk for s in held], lease_expires_at__gt=later).count() == len(held)


@pytest.mark.django_db
def test_each_job_is_told_apart(token, many, participant):
    a, b, c, d, e = queue.claim_several(token[0], "w1", 5)
    expire(b.pk)
    assert queue.claim_next(token[0], "w2").pk == b.pk  # b was offered again: attempt 2 runs
    Submission.objects.filter(pk=c.pk).update(status="cancelled")
    queue.complete(token[0], d.pk, queue.Completion(attempt=1, output=GOOD))
    expire(e.pk)  # ran out, but nobody took it: renewed, as the one-job heartbeat does
    beats = queue.heartbeat_several(token[0], [(a.pk, 1), (b.pk, 1), (b.pk, 2), (c.pk, 1), (d.pk, 1), (e.pk, 1)])
    assert [b.state for b in beats] == ["extended", "lost", "extended", "ended", "ended", "extended"]
    assert beats[0].lease_expires_at > timezone.now()
    assert Submission.objects.get(pk=e.pk).lease_expires_at > timezone.now()


@pytest.mark.django_db
def test_a_token_renews_only_the_leases_it_took(token, many, admin_user):
    (held,) = queue.claim_several(token[0], "w1", 1)
    other, _ = create_worker_token(admin_user, "same queue, another machine")
    elsewhere, _ = create_worker_token(admin_user, "another queue")
    WorkerToken.objects.filter(pk=elsewhere.pk).update(queue_name="remote-elsewhere")
    elsewhere.refresh_from_db()
    expire(held.pk)
    for stranger in (other, elsewhere):
        assert [b.state for b in queue.heartbeat_several(stranger, [(held.pk, 1)])] == ["ended"]
        with pytest.raises(LeaseLost):
            queue.heartbeat(stranger, held.pk, 1)  # the one-job heartbeat: the same rule
    assert Submission.objects.get(pk=held.pk).lease_expires_at < timezone.now()
    assert [b.state for b in queue.heartbeat_several(token[0], [(held.pk, 1), (10**9, 1)])] == ["extended", "ended"]


@pytest.mark.django_db
def test_duplicates_are_answered_each_and_too_many_refused(token, many):
    (held,) = queue.claim_several(token[0], "w1", 1)
    beats = queue.heartbeat_several(token[0], [(held.pk, 1)] * 3)
    assert [b.state for b in beats] == ["extended"] * 3
    with pytest.raises(SubmissionError, match="at most"):
        queue.heartbeat_several(token[0], [(held.pk, 1)] * (queue.MAX_HEARTBEAT_JOBS + 1))
    assert queue.heartbeat_several(token[0], []) == []


# -- the route ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_route_answers_every_job_in_order(worker, many):
    jobs = worker.post("/api/v1/worker/claim", {"worker_id": "w1", "max_jobs": 2}, format="json").json()["jobs"]
    a, b = jobs
    Submission.objects.filter(pk=b["submission_id"]).update(status="cancelled")
    body = {"jobs": [{"submission_id": j["submission_id"], "attempt": j["attempt"]} for j in (a, b, a)]}
    answer = worker.post("/api/v1/worker/heartbeat", body, format="json")
    assert answer.status_code == 200, answer.content
    got = answer.json()["jobs"]
    assert [(g["submission_id"], g["state"]) for g in got] == [
        (a["submission_id"], "extended"),
        (b["submission_id"], "ended"),
        (a["submission_id"], "extended"),
    ]
    assert got[0]["lease_expires_at"] and got[1]["lease_expires_at"] is None
    one = worker.post(f"/api/v1/worker/jobs/{a['submission_id']}/heartbeat", {"attempt": 1}, format="json")
    assert one.status_code == 200 and one.json()["lease_expires_at"]  # older workers' route, unchanged


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"jobs": []},
        {"jobs": "all of them"},
        {"jobs": {"submission_id": 1, "attempt": 1}},
        {"jobs": [1, 2]},
        {"jobs": [{"submission_id": 1}]},
        {"jobs": [{"submission_id": "one", "attempt": 1}]},
        {"jobs": [{"submission_id": 0, "attempt": 1}]},
        {"jobs": [{"submission_id": 2**70, "attempt": 1}]},
        {"jobs": [{"submission_id": 1, "attempt": 2**40}]},
        {"jobs": [{"submission_id": i, "attempt": 1} for i in range(1, 10**5 + 1)]},
        [{"submission_id": 1, "attempt": 1}],
    ],
)
def test_a_malformed_heartbeat_is_refused_whole_with_why(worker, many, body):
    held = queue.claim_several(WorkerToken.objects.get(name="beating worker"), "w1", 2)
    before = dict(Submission.objects.filter(pk__in=[s.pk for s in held]).values_list("pk", "lease_expires_at"))
    answer = worker.post("/api/v1/worker/heartbeat", body, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "invalid"
    after = dict(Submission.objects.filter(pk__in=[s.pk for s in held]).values_list("pk", "lease_expires_at"))
    assert after == before


@pytest.mark.django_db
def test_another_queues_jobs_are_ended_and_untouched(worker, many, admin_user):
    other_row, other_token = create_worker_token(admin_user, "another queue")
    WorkerToken.objects.filter(pk=other_row.pk).update(queue_name="remote-elsewhere")
    jobs = worker.post("/api/v1/worker/claim", {"worker_id": "w1", "max_jobs": 3}, format="json").json()["jobs"]
    for job in jobs:
        expire(job["submission_id"])
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {other_token}")
    body = {"jobs": [{"submission_id": j["submission_id"], "attempt": j["attempt"]} for j in jobs]}
    answer = stranger.post("/api/v1/worker/heartbeat", body, format="json")
    assert answer.status_code == 200
    assert [g["state"] for g in answer.json()["jobs"]] == ["ended"] * 3
    assert not Submission.objects.filter(pk__in=[j["submission_id"] for j in jobs], lease_expires_at__gt=timezone.now())


@pytest.mark.django_db
def test_the_in_process_transport_answers_as_http_does(token, many):
    from assay.server.inprocess_client import InProcessClient

    client = InProcessClient(token[1])
    a, b = client.claim_several("w1", 2, wait=0)
    Submission.objects.filter(pk=b["submission_id"]).update(status="cancelled")
    states = client.heartbeat_several([(a["submission_id"], 1), (b["submission_id"], 1)])
    assert states == ["extended", "ended"]


# -- the worker loop ------------------------------------------------------------------------------------------
class SlowFetch:
    """The real client, with one file whose download takes ``seconds`` (a large file on a slow link)."""

    def __init__(self, client, sha256: str, seconds: float) -> None:
        self.client, self.sha256, self.seconds = client, sha256, seconds

    def __getattr__(self, name):
        return getattr(self.client, name)

    def download(self, sha256, target):
        if sha256 == self.sha256:
            time.sleep(self.seconds)
        return self.client.download(sha256, target)


def _slow_world(slow_challenge, participant, settings, lease: int):  # noqa: F811 - the fixture's value
    settings.WORKER_LEASE_SECONDS = lease
    register_team(slow_challenge, participant, "Team Beats")
    dev = slow_challenge.phases.get(codename="dev")
    dev.max_concurrent_submissions_allowed = 10
    dev.save(update_fields=["max_concurrent_submissions_allowed"])
    return dev


def _payload(sleep: float, pad: int = 0) -> bytes:
    payload = json.loads(PERFECT.read_text())
    payload["sleep"] = sleep
    return json.dumps(payload).encode() + b" " * pad  # trailing spaces: still JSON, too large to ride inline


def _run(worker, jobs: int) -> threading.Thread:
    def run() -> None:
        try:
            worker.run(max_jobs=jobs)
        finally:
            connections.close_all()
            worker.client.close()  # over HTTP its kept-alive connection holds a live-server thread and its session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("transport", "slots"), [("http", 2), ("inprocess", 2), ("inprocess", 1)])
def test_a_job_keeps_its_lease_while_a_file_downloads_slowly(
    live_server,
    slow_challenge,  # noqa: F811
    participant,
    admin_user,
    tmp_path,
    settings,
    transport,
    slots,
):
    """Issue 13: with several slots the loop fetched a new job's files on the thread that heartbeats, so a
    long job's lease ran out meanwhile, another worker took it and the first result was thrown away; with
    one slot a job's own files were fetched before its heartbeats began."""
    dev = _slow_world(slow_challenge, participant, settings, lease=4)
    sids = [post_submission(participant, dev, _payload(sleep=10))] if slots > 1 else []
    big = _payload(sleep=0, pad=100 * 1024)
    sids.append(post_submission(participant, dev, big))
    _, token = create_worker_token(admin_user, "slots")
    client = SlowFetch(client_for(live_server.url, token, transport), hashlib.sha256(big).hexdigest(), seconds=8)
    worker = Worker(client, tmp_path / "w", poll_wait=1, slots=slots)
    thread = _run(worker, jobs=len(sids))
    ours = Submission.objects.filter(pk__in=sids, status="running", lease_owner=worker.worker_id)
    wait_for(lambda: ours.count() == len(sids), what="every job claimed")
    thief, _ = create_worker_token(admin_user, "another worker")
    stolen = []
    while thread.is_alive():  # another worker, claiming whatever runs out
        taken = queue.claim_next(thief, "thief")
        if taken is not None:
            stolen.append((taken.pk, taken.attempt))
        time.sleep(0.25)
    thread.join(5)
    assert stolen == []
    rows = Submission.objects.filter(pk__in=sids).values_list("status", "attempt", "expired_leases")
    assert list(rows) == [("finished", 1, 0)] * len(sids)
    assert LeaderboardEntry.objects.filter(submission_id__in=sids).count() == len(sids)


def _steal(thief, sid: int) -> Submission:
    """Another worker takes the job as if its lease had run out (in one transaction: no heartbeat between)."""
    with transaction.atomic():
        expire(sid)
        taken = queue.claim_next(thief, "thief")
    assert taken is not None and taken.pk == sid and taken.attempt == 2
    return taken


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slots", [1, 2])  # the one-job loop and the batched one
def test_a_job_offered_again_still_reports_and_its_result_is_taken_when_it_is_the_only_one(
    live_server,
    slow_challenge,  # noqa: F811
    participant,
    admin_user,
    tmp_path,
    settings,
    caplog,
    slots,
):
    caplog.set_level(logging.INFO, logger="assay.worker")
    dev = _slow_world(slow_challenge, participant, settings, lease=4)
    sid = post_submission(participant, dev, _payload(sleep=6))
    _, token = create_worker_token(admin_user, "slots")
    worker = Worker(client_for(live_server.url, token, "inprocess"), tmp_path / "w", poll_wait=1, slots=slots)
    thread = _run(worker, jobs=1)
    wait_for(lambda: len(_cached_files(tmp_path / "w")) == 3, what="the job's three files")
    thief, _ = create_worker_token(admin_user, "another worker")
    _steal(thief, sid)
    thread.join(60)
    assert not thread.is_alive()
    sub = Submission.objects.get(pk=sid)
    assert (sub.status, sub.expired_leases) == ("finished", 1)  # the first attempt's result, taken late
    assert LeaderboardEntry.objects.filter(submission=sub).count() == 1
    with pytest.raises(LeaseLost):
        queue.complete(thief, sid, queue.Completion(attempt=2, output=GOOD))  # exactly once
    assert "offered again" in caplog.text and "not accepted" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_late_result_is_refused_once_another_attempt_completed_and_the_worker_says_why(
    live_server,
    slow_challenge,  # noqa: F811
    participant,
    admin_user,
    tmp_path,
    settings,
    caplog,
):
    caplog.set_level(logging.INFO, logger="assay.worker")
    dev = _slow_world(slow_challenge, participant, settings, lease=4)
    sid = post_submission(participant, dev, _payload(sleep=8))
    _, token = create_worker_token(admin_user, "slots")
    worker = Worker(client_for(live_server.url, token, "http"), tmp_path / "w", poll_wait=1, slots=2)
    thread = _run(worker, jobs=1)
    wait_for(lambda: len(_cached_files(tmp_path / "w")) == 3, what="the job's three files")
    thief, _ = create_worker_token(admin_user, "another worker")
    _steal(thief, sid)
    wait_for(lambda: "offered again" in caplog.text, what="the worker to hear its lease was lost")
    assert queue.complete(thief, sid, queue.Completion(attempt=2, output=GOOD)).status == "finished"
    thread.join(60)
    assert not thread.is_alive()
    assert [e.result for e in LeaderboardEntry.objects.filter(submission_id=sid)] == [{"Accuracy": 0.75, "F1": 0.5}]
    assert "not accepted: its lease had run out and the job was offered again" in caplog.text


def _cached_files(workdir) -> list:
    """The worker cache's files (``<sha>/<name>``), not its holds' ``.pin`` files nor partial downloads."""
    return [p for p in (workdir / "cache").glob("*/*") if not p.name.startswith(".")]
