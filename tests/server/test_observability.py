"""Monitoring (issue 15 item 3): Prometheus metrics at /metrics, JSON log lines with a request id that follows a
submission from submit to leaderboard, and /readyz.

The journey runs the real worker loop over the in-process transport (the demo's worker) against a real
submission; the metrics are read back from /metrics as Prometheus parses them, as differences, since the
counters live for the whole test process.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from assay.server.inprocess_client import InProcessClient
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.observability.logs import JsonFormatter, logging_settings
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.worker import Worker
from tests.factories import DEMO_BUNDLE, upload
from tests.s3 import s3_client

PERFECT = Path(DEMO_BUNDLE).parent / "demo-submissions" / "dev_perfect.json"
SUBMIT_ROUTE = "api/v1/phases/<int:phase_id>/submissions"


# --- helpers ---------------------------------------------------------------------------------------------


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}, parsed by prometheus_client's own parser."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class JsonLines:
    """The JSON lines the formatter writes for every record of ``logger`` (and below), parsed back."""

    def __init__(self, logger: str = "assay") -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.logger = logging.getLogger(logger)
        self.level = self.logger.level

    def __enter__(self) -> JsonLines:
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]  # each line one JSON object

    def about(self, submission_id: int) -> dict[str, dict]:
        """The submission's event lines by event (a worker's own job lines carry its id too, with no event)."""
        return {
            line["event"]: line
            for line in self.lines()
            if line.get("submission_id") == submission_id and "event" in line
        }


def fresh_server(var: Path, **settings: str) -> dict[str, str]:
    """The environment of a server process of its own: SQLite and files under ``var``, whatever this run uses."""
    clean = {"ASSAY_DATABASE_URL": "", "ASSAY_CACHE_URL": "", "ASSAY_STORAGE_URL": "", "ASSAY_VAR_DIR": str(var)}
    return {**os.environ, **clean, "DJANGO_SETTINGS_MODULE": "assay.server.settings", **settings}


def run_one_job(token: str, workdir: Path) -> None:
    """The demo's worker: the real loop over the in-process transport, one job, on its own thread."""
    worker = Worker(InProcessClient(token), workdir, poll_wait=1)

    def run() -> None:
        try:
            worker.run(max_jobs=1)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the worker did not finish its job"


# --- a submission's journey -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_submission_is_followed_from_submit_to_leaderboard_by_one_request_id(
    team, participant, demo_challenge, admin_user, tmp_path
):
    dev = demo_challenge.phases.get(codename="dev")
    api = APIClient()
    api.force_authenticate(participant)
    before = scrape()
    request_id = f"journey-{uuid.uuid4().hex}"
    with JsonLines() as logs:
        response = api.post(
            f"/api/v1/phases/{dev.pk}/submissions",
            {"input_file": upload(PERFECT.read_bytes(), "preds.json")},
            format="multipart",
            HTTP_X_REQUEST_ID=request_id,
        )
        assert response.status_code == 201, response.content
        assert response["X-Request-ID"] == request_id
        sid = response.json()["id"]
        assert Submission.objects.get(pk=sid).request_id == request_id
        waiting = scrape()
        _, token = create_worker_token(admin_user, "observed worker")
        run_one_job(token, tmp_path / "worker")
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", sub.failure_reason
    assert LeaderboardEntry.objects.filter(submission=sub).exists()

    lines = logs.about(sid)
    assert set(lines) == {
        "submission.submitted",
        "submission.claimed",
        "submission.leaderboard",
        "submission.evaluated",
    }, logs.lines()
    for event, line in lines.items():
        assert line["request_id"] == request_id, (event, line)
        assert (line["challenge_id"], line["phase_id"]) == (demo_challenge.pk, dev.pk), line
        assert line["logger"] == "assay.server.submissions" and line["level"] == "INFO"
        assert line["timestamp"].endswith("Z")
    assert "via_request_id" not in lines["submission.claimed"]  # the in-process worker serves no request
    assert "finished" in lines["submission.evaluated"]["message"]
    assert "splits: public" in lines["submission.leaderboard"]["message"]

    after = scrape()
    assert (
        value(waiting, "assay_queue_depth", queue="default") == value(before, "assay_queue_depth", queue="default") + 1
    )
    assert value(after, "assay_queue_depth", queue="default") == 0
    assert value(after, "assay_queue_running", queue="default") == 0
    for name, labels in (
        ("assay_claim_wait_seconds_count", {"queue": "default"}),
        ("assay_evaluation_seconds_count", {"queue": "default", "outcome": "finished"}),
        ("assay_http_request_duration_seconds_count", {"route": SUBMIT_ROUTE, "method": "POST", "status": "2xx"}),
    ):
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
    waited = value(after, "assay_claim_wait_seconds_sum", queue="default") - value(
        before, "assay_claim_wait_seconds_sum", queue="default"
    )
    assert 0 <= waited < 60
    assert value(after, "assay_workers_seen", queue="default") == 1
    seen = value(after, "assay_worker_last_seen_timestamp_seconds", queue="default")
    assert abs(seen - timezone.now().timestamp()) < 120
    assert value(after, "assay_metrics_database_up") == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_request_about_a_submission_logs_the_submitters_id_and_its_own(team, participant, demo_challenge):
    """Over HTTP the claim runs in the worker's request: the line names both (request_id, via_request_id)."""
    sub = submit(participant, demo_challenge.phases.get(codename="dev"), upload(b"{}"), "p.json", SubmissionFields())
    _, token = create_worker_token(None, "http worker")
    worker = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    with JsonLines() as logs:
        answer = worker.post(
            "/api/v1/worker/claim", {"worker_id": "w-http"}, format="json", HTTP_X_REQUEST_ID="claim-1"
        )
        assert answer.status_code == 200, answer.content
        done = worker.post(
            f"/api/v1/worker/jobs/{sub.pk}/complete",
            {"attempt": 1, "error": "the script took too long", "error_kind": "timeout"},
            format="json",
            HTTP_X_REQUEST_ID="complete-1",
        )
        assert done.status_code == 200 and done.json()["status"] == "failed"
    lines = logs.about(sub.pk)
    claimed, evaluated = lines["submission.claimed"], lines["submission.evaluated"]
    assert claimed["request_id"] == evaluated["request_id"] == sub.request_id
    assert (claimed["via_request_id"], evaluated["via_request_id"]) == ("claim-1", "complete-1")
    assert "failed (timeout)" in evaluated["message"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_evaluation_is_counted_by_the_workers_error_kind(
    team, participant, demo_challenge, admin_user, tmp_path
):
    """The demo script refuses a list (its evaluate() raises): the worker reports ``script_error``."""
    dev = demo_challenge.phases.get(codename="dev")
    before = scrape()
    with JsonLines() as logs:
        sub = submit(participant, dev, upload(b"[1, 2, 3]"), "preds.json", SubmissionFields())
        _, token = create_worker_token(admin_user, "observed worker")
        run_one_job(token, tmp_path / "worker")
    assert Submission.objects.get(pk=sub.pk).status == "failed"
    after = scrape()
    reason = {"queue": "default", "reason": "script_error"}
    assert (
        value(after, "assay_submission_failures_total", **reason)
        == value(before, "assay_submission_failures_total", **reason) + 1
    )
    outcome = {"queue": "default", "outcome": "failed"}
    assert (
        value(after, "assay_evaluation_seconds_count", **outcome)
        == value(before, "assay_evaluation_seconds_count", **outcome) + 1
    )
    line = logs.about(sub.pk)["submission.evaluated"]
    assert "failed (script_error)" in line["message"] and line["request_id"] == sub.request_id != ""


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    return submit(participant, demo_challenge.phases.get(codename="dev"), upload(b"{}"), "p.json", SubmissionFields())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ({"error": "took too long", "error_kind": "timeout"}, "timeout"),
        ({"error": "killed", "error_kind": "memory"}, "memory"),
        ({"error": "an EvalAI worker says only this"}, "unspecified"),
        ({"output": {"result": "not a list"}}, "bad_output"),  # refused by the server's result contract
    ],
)
def test_failure_reasons(queued, admin_user, django_capture_on_commit_callbacks, report, reason):
    client = InProcessClient(create_worker_token(admin_user, "w")[1])
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        client.claim("w1", wait=0)
        assert client.complete(queued.pk, 1, report)["status"] == "failed"
    labels = {"queue": "default", "reason": reason}
    assert (
        value(scrape(), "assay_submission_failures_total", **labels)
        == value(before, "assay_submission_failures_total", **labels) + 1
    )


@pytest.mark.django_db
def test_lost_leases_count_as_lost(queued, admin_user, settings, django_capture_on_commit_callbacks):
    from assay.server.submissions.services import queue

    settings.WORKER_MAX_ATTEMPTS = 1
    token = WorkerToken.objects.get(pk=create_worker_token(admin_user, "w")[0].pk)
    queue.claim_next(token, "w1")
    Submission.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    before = scrape()
    with JsonLines() as logs, django_capture_on_commit_callbacks(execute=True):
        assert queue.claim_next(token, "w2") is None
    labels = {"queue": "default", "reason": "lost"}
    assert (
        value(scrape(), "assay_submission_failures_total", **labels)
        == value(before, "assay_submission_failures_total", **labels) + 1
    )
    line = logs.about(queued.pk)["submission.evaluated"]
    assert line["level"] == "WARNING" and "failed (lost)" in line["message"]


@pytest.mark.django_db
def test_an_unknown_error_kind_is_refused(queued, admin_user):
    from assay.worker.client import ProtocolError

    client = InProcessClient(create_worker_token(admin_user, "w")[1])
    client.claim("w1", wait=0)
    with pytest.raises(ProtocolError) as refused:
        client.complete(queued.pk, 1, {"error": "x", "error_kind": "gremlins"})
    assert refused.value.status == 400 and "error_kind: one of timeout" in str(refused.value)
    http = APIClient(HTTP_AUTHORIZATION=f"Bearer {client.token}")
    answer = http.post(
        f"/api/v1/worker/jobs/{queued.pk}/complete", {"attempt": 1, "error": "x", "error_kind": 7}, format="json"
    )
    assert answer.status_code == 400 and "error_kind" in answer.content.decode()


# --- HTTP latency and request ids -------------------------------------------------------------------------


@pytest.mark.django_db
def test_http_latency_is_labelled_by_route_never_by_path(client):
    before = scrape()
    for pk in (12345, 67890):
        assert client.get(f"/challenges/{pk}/").status_code == 404
    assert client.get("/no/such/page/1").status_code == 404
    after = scrape()
    routed = {"route": "challenges/<int:pk>/", "method": "GET", "status": "4xx"}
    unrouted = {"route": "<unrouted>", "method": "GET", "status": "4xx"}
    name = "assay_http_request_duration_seconds_count"
    assert value(after, name, **routed) == value(before, name, **routed) + 2
    assert value(after, name, **unrouted) == value(before, name, **unrouted) + 1
    assert not any("12345" in str(labels) or "/no/such" in str(labels) for _, labels in after)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "x" * 65, 'quote"d', "new\nline", "ünïcode", "semi;colon"],
)
def test_a_malformed_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32 and int(response["X-Request-ID"], 16) >= 0


@pytest.mark.django_db
def test_a_well_formed_request_id_is_kept_and_names_the_requests_log_lines(client):
    with JsonLines("django.request") as logs:
        response = client.get("/readyz", HTTP_X_REQUEST_ID="lb-probe.0001_a")  # no worker: 503, logged by Django
        assert response["X-Request-ID"] == "lb-probe.0001_a"
        assert response.status_code == 503
        client.get("/no/such/page")
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]  # fresh each time
    first, second = logs.lines()
    assert first["message"] == "Service Unavailable: /readyz" and first["request_id"] == "lb-probe.0001_a"
    assert second["message"] == "Not Found: /no/such/page" and len(second["request_id"]) == 32


# --- JSON log shape ---------------------------------------------------------------------------------------


def test_json_lines_shape_and_the_text_default():
    record = logging.LogRecord("assay.x", logging.ERROR, __file__, 1, "bad %s", ("thing",), None)
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.submission_id, record.request_id = 7, "abc"
    text = JsonFormatter().format(record)
    assert "\n" not in text
    doc = json.loads(text)
    assert set(doc) == {"timestamp", "level", "logger", "message", "request_id", "submission_id", "exception"}
    assert (doc["level"], doc["logger"], doc["message"], doc["request_id"]) == ("ERROR", "assay.x", "bad thing", "abc")
    assert "ValueError: two\nlines" in doc["exception"]
    job = logging.LogRecord("assay.worker", logging.INFO, "", 1, "submission 7 attempt 2: evaluating", (), None)
    job.submission_id, job.attempt = 7, 2  # the worker's lines about one job (assay.worker.loop._job_log)
    assert json.loads(JsonFormatter().format(job))["attempt"] == 2
    plain = json.loads(JsonFormatter().format(logging.LogRecord("a", logging.INFO, "", 1, "m", (), None)))
    assert plain["request_id"] is None  # outside a request: present, null

    assert "formatters" not in logging_settings({})  # human text unless asked
    config = logging_settings({"ASSAY_LOG_FORMAT": " JSON ", "ASSAY_LOG_LEVEL": "warning"})
    assert config["handlers"]["console"]["formatter"] == "json" and config["root"]["level"] == "WARNING"
    with pytest.raises(ImproperlyConfigured, match="ASSAY_LOG_FORMAT"):
        logging_settings({"ASSAY_LOG_FORMAT": "xml"})


def test_the_server_writes_json_lines_when_asked(tmp_path):
    """Settings wire the formatter: a fresh process with ASSAY_LOG_FORMAT=json logs a request as JSON."""
    code = """
        import django, logging
        django.setup()
        from django.test import Client
        Client().get("/metrics", HTTP_X_REQUEST_ID="from-outside", REMOTE_ADDR="10.9.9.9")
    """
    env = fresh_server(tmp_path, ASSAY_LOG_FORMAT="json")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(
        line["logger"] == "django.request" and line["request_id"] == "from-outside" and line["level"] == "WARNING"
        for line in lines
    ), lines


# --- /metrics access --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_from_elsewhere_need_the_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200  # loopback (the test client's 127.0.0.1)
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 404  # no token set: no such page
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404  # a local proxy's
    assert client.get("/metrics", HTTP_X_REAL_IP="203.0.113.9").status_code == 404
    assert client.post("/metrics").status_code == 405

    settings.METRICS_TOKEN = "s3cret-token"
    outside = {"REMOTE_ADDR": "10.0.0.5"}
    assert client.get("/metrics", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", **outside).status_code == 200
    scrape(client, HTTP_AUTHORIZATION="bearer s3cret-token", HTTP_X_FORWARDED_FOR="203.0.113.9")


def test_metrics_add_up_across_processes(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR (gunicorn's workers): two processes count, the second one's scrape sums both."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = fresh_server(tmp_path / "var", PROMETHEUS_MULTIPROC_DIR=str(folder))
    count = """
        import django, sys
        django.setup()
        from django.test import Client
        from assay.server.observability.metrics import FAILURES, exposition
        FAILURES.labels(queue="default", reason="timeout").inc()
        Client().get("/healthz")
        if sys.argv[1] == "scrape":
            sys.stdout.write(exposition().decode())
    """
    for last in ("count", "scrape"):
        command = [sys.executable, "-c", textwrap.dedent(count), last]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(done.stdout)
        for s in family.samples
    }
    assert value(samples, "assay_submission_failures_total", queue="default", reason="timeout") == 2
    healthz = {"route": "healthz", "method": "GET", "status": "2xx"}
    assert value(samples, "assay_http_request_duration_seconds_count", **healthz) == 2
    assert value(samples, "assay_metrics_database_up") == 0  # the fresh var folder has no tables: said, not a 500


# --- /readyz ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_wants_a_platform_worker_seen_lately(client, settings, admin_user, media):
    settings.READY_WORKER_MINUTES = 10
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["not_ready"] == ["workers"]
    assert answer.json()["checks"]["database"]["ok"] and answer.json()["checks"]["storage"]["ok"]
    skipped = client.get("/readyz?skip=workers")  # what a probe that the workers wait on asks
    assert skipped.status_code == 200 and set(skipped.json()["checks"]) == {"database", "storage"}
    refused = client.get("/readyz?skip=workers,<b>" + "x" * 500)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid"
    assert "is no check; the checks are database, storage, workers" in refused.json()["message"]
    assert len(refused.json()["message"]) < 200

    row, _ = create_worker_token(admin_user, "platform worker")
    WorkerToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now() - dt.timedelta(minutes=11))
    assert client.get("/readyz").status_code == 503  # seen, but not lately
    WorkerToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "not_ready": [],
        "checks": {
            "database": {"ok": True, "detail": ready.json()["checks"]["database"]["detail"]},
            "storage": {"ok": True, "detail": "FileSystemStorage"},
            "workers": {"ok": True, "detail": "1 seen in the last 10 minutes"},
        },
    }
    assert not list(media.rglob("*.probe"))  # the storage probe cleans up after itself

    WorkerToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    assert client.get("/readyz").status_code == 503
    settings.READY_WORKER_MINUTES = 0
    assert client.get("/readyz").json()["checks"]["workers"] == {
        "ok": True,
        "detail": "not checked (ASSAY_READY_WORKER_MINUTES=0)",
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_counts_the_in_process_worker(client, settings, media):
    """``assay demo``'s worker thread counts from its start, before its token was first used."""
    from assay.server import inprocess_worker

    settings.READY_WORKER_MINUTES = 10
    settings.VAR_DIR = media
    settings.INPROCESS_WORKER_TRANSPORT = "inprocess"
    assert client.get("/readyz").status_code == 503
    supervised = inprocess_worker.start("http://127.0.0.1:1")  # the in-process transport needs no address
    try:
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.json()
        assert answer.json()["checks"]["workers"]["detail"] == "the in-process worker runs in this process"
    finally:
        supervised.stop()
        supervised.thread.join(30)


@pytest.mark.django_db
def test_readyz_says_when_storage_is_broken(client, settings, tmp_path):
    settings.READY_WORKER_MINUTES = 0
    not_a_folder = tmp_path / "media-is-a-file"
    not_a_folder.write_text("")
    settings.MEDIA_ROOT = str(not_a_folder)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["not_ready"] == ["storage"]
    detail = answer.json()["checks"]["storage"]["detail"]
    assert detail.startswith("the file storage failed a write and read (") and str(tmp_path) not in detail


def test_readyz_says_when_the_database_is_down(tmp_path):
    """A real database that does not answer: PostgreSQL at a port nothing listens on."""
    code = """
        import django, json, sys
        django.setup()
        from django.test import Client
        answer = Client().get("/readyz")
        sys.stdout.write(json.dumps([answer.status_code, answer.json()]))
    """
    env = fresh_server(tmp_path, ASSAY_DATABASE_URL="postgres://nobody@127.0.0.1:9/assay")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    status, body = json.loads(done.stdout)
    assert status == 503
    assert body["not_ready"] == ["database", "workers"]
    assert body["checks"]["database"]["detail"] == "the database did not answer (OperationalError)"
    assert body["checks"]["workers"]["detail"] == "unknown: the database did not answer"
    assert "127.0.0.1" not in done.stdout  # the address stays in the log


@pytest.mark.django_db
def test_readyz_probes_the_object_store(client, settings, s3_storage, s3_server, media):
    """With the files in an S3 bucket (a real S3 API server), the probe writes, reads and deletes there."""
    settings.READY_WORKER_MINUTES = 0
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["checks"]["storage"]["ok"] is True
    assert s3_server.keys(s3_storage) == [] and not list(media.iterdir())  # gone, and never local

    s3_client(s3_server.endpoint).delete_bucket(Bucket=s3_storage)  # the store answers, the bucket is gone
    broken = client.get("/readyz")
    assert broken.status_code == 503 and broken.json()["not_ready"] == ["storage"]
