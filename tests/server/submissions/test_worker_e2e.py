"""The whole flow over real HTTP: upload → queue → worker (sandboxed evaluation) → leaderboard entry.

A live server runs in a thread; workers are the real ``assay.worker`` loop (in a thread) or the real
``assay worker`` command (in a subprocess, so it can be killed with SIGKILL).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services.tokens import create_worker_token
from assay.worker import Worker, WorkerClient
from tests.factories import DEMO_BUNDLE, import_published, register_team, upload

pytestmark = pytest.mark.django_db(transaction=True)

PERFECT = Path(DEMO_BUNDLE).parent / "demo-submissions" / "dev_perfect.json"
SLOW_MAIN = """
import json, time
from .metrics import accuracy, f1_positive

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(user_submission_file) as fh:
        submission = json.load(fh)
    time.sleep(float(submission.pop("sleep", 0)))
    with open(test_annotation_file) as fh:
        truth = json.load(fh)["public"]
    predicted = {k: int(v) for k, v in submission.items()}
    return {"result": [{"public": {"Accuracy": accuracy(truth, predicted), "F1": f1_positive(truth, predicted)}}]}
"""


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_submission(user, phase, content: bytes, name: str = "preds.json") -> int:
    response = api_for(user).post(
        f"/api/v1/phases/{phase.pk}/submissions", {"input_file": upload(content, name)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


TRANSPORTS = ("http", "inprocess")  # a remote worker's, and the in-process worker's default


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    """Both ways a worker reaches the server run the same test."""
    return request.param


def client_for(url: str, token: str, transport: str = "http"):
    from assay.server.inprocess_client import InProcessClient

    return InProcessClient(token) if transport == "inprocess" else WorkerClient(url, token)


def run_worker_thread(url: str, token: str, workdir: Path, jobs: int = 1, transport: str = "http", **kw) -> Worker:
    import threading

    from django.db import connections

    worker = Worker(client_for(url, token, transport), workdir, poll_wait=1, **kw)

    def run() -> None:
        try:
            worker.run(max_jobs=jobs)
        finally:
            connections.close_all()  # the thread's own, opened by the in-process transport's services
            worker.client.close()  # over HTTP: its kept-alive connection holds a live-server thread's database session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    worker.thread = thread  # type: ignore[attr-defined]
    return worker


def test_upload_to_leaderboard(live_server, team, participant, demo_challenge, admin_user, tmp_path, transport):
    dev = demo_challenge.phases.get(codename="dev")
    sid = post_submission(participant, dev, PERFECT.read_bytes())
    _, token = create_worker_token(admin_user, "e2e")
    worker = run_worker_thread(live_server.url, token, tmp_path / "w", transport=transport)
    worker.thread.join(120)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    entry = LeaderboardEntry.objects.get(submission=sub)
    assert entry.result == {"Accuracy": 1.0, "F1": 1.0}
    detail = api_for(participant).get(f"/api/v1/submissions/{sid}").json()
    assert "scored" in detail["stdout"] and detail["status"] == "finished"


def test_script_error_reaches_the_participant(
    live_server, team, participant, demo_challenge, admin_user, tmp_path, transport
):
    dev = demo_challenge.phases.get(codename="dev")
    sid = post_submission(participant, dev, b"[1, 2, 3]")
    _, token = create_worker_token(admin_user, "e2e")
    run_worker_thread(live_server.url, token, tmp_path / "w", transport=transport).thread.join(120)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "failed"
    assert "JSON object" in sub.failure_reason
    assert not LeaderboardEntry.objects.filter(submission=sub).exists()


@pytest.fixture
def slow_challenge(media, host_team, tmp_path):
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "slow"))
    (folder / "evaluation_script" / "main.py").write_text(SLOW_MAIN)
    challenge = import_published(host_team, folder)
    return challenge


def _worker_command(url: str, token: str, workdir: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_WORKER_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "assay.cli.main", "worker", "--server", url, "--workdir", str(workdir), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_killed_worker_loses_nothing(
    live_server, slow_challenge, participant, admin_user, tmp_path, settings, transport
):
    """SIGKILL mid-evaluation: the lease expires, another worker (either transport) finishes the job exactly once."""

    settings.WORKER_LEASE_SECONDS = 3
    register_team(slow_challenge, participant, "Team Slow")
    dev = slow_challenge.phases.get(codename="dev")
    payload = json.loads(PERFECT.read_text())
    payload["sleep"] = 4
    sid = post_submission(participant, dev, json.dumps(payload).encode())
    _, token = create_worker_token(admin_user, "doomed")
    doomed = _worker_command(live_server.url, token, tmp_path / "doomed")
    try:
        wait_for(lambda: Submission.objects.get(pk=sid).status == "running", what="the first claim")
        time.sleep(1.0)  # well inside evaluate()
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    finally:
        if doomed.poll() is None:
            os.killpg(doomed.pid, signal.SIGKILL)
    assert Submission.objects.get(pk=sid).status == "running"  # nobody reported anything
    survivor = run_worker_thread(live_server.url, token, tmp_path / "survivor", transport=transport)
    survivor.thread.join(120)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished" and sub.attempt == 2 and sub.expired_leases == 1
    assert LeaderboardEntry.objects.filter(submission=sub).count() == 1


def test_sigterm_returns_the_job_at_once(live_server, slow_challenge, participant, admin_user, tmp_path):

    register_team(slow_challenge, participant, "Team Term")
    dev = slow_challenge.phases.get(codename="dev")
    payload = json.loads(PERFECT.read_text())
    payload["sleep"] = 30
    sid = post_submission(participant, dev, json.dumps(payload).encode())
    _, token = create_worker_token(admin_user, "polite")
    proc = _worker_command(live_server.url, token, tmp_path / "polite")
    try:
        wait_for(lambda: Submission.objects.get(pk=sid).status == "running", what="the claim")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "submitted" and sub.expired_leases == 0, proc.stdout.read().decode()


@pytest.fixture
def remote_challenge(media, host_team, tmp_path):
    """A remote-evaluation challenge whose bundle holds no labels: they stay on the host's machine."""
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "remote"))
    config = yaml.safe_load((folder / "challenge_config.yaml").read_text())
    config["remote_evaluation"] = True
    for phase in config["challenge_phases"]:
        phase.pop("test_annotation_file")
    (folder / "challenge_config.yaml").write_text(yaml.safe_dump(config))
    labels = tmp_path / "host-only" / "dev_labels.json"
    labels.parent.mkdir()
    shutil.move(folder / "annotations" / "dev_annotations.json", labels)
    shutil.rmtree(folder / "annotations")
    challenge = import_published(host_team, folder)
    challenge.labels = labels  # type: ignore[attr-defined]
    return challenge


def test_remote_worker_serves_only_its_challenge(
    live_server, remote_challenge, team, participant, demo_challenge, host, tmp_path
):
    from assay.server.challenges.models import Participation

    Participation.objects.create(challenge=remote_challenge, team=team, terms_accepted_at=timezone.now())
    assert not remote_challenge.phases.get(codename="dev").test_annotation  # no labels on the platform
    remote_sid = post_submission(participant, remote_challenge.phases.get(codename="dev"), PERFECT.read_bytes())
    platform_sid = post_submission(participant, demo_challenge.phases.get(codename="dev"), PERFECT.read_bytes())
    assert Submission.objects.get(pk=remote_sid).queue_name == f"challenge-{remote_challenge.pk}"
    _, token = create_worker_token(host, "host cluster", challenge=remote_challenge)
    proc = _worker_command(
        live_server.url, token, tmp_path / "remote", "--annotation", f"dev={remote_challenge.labels}", "--once"
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    remote = Submission.objects.get(pk=remote_sid)
    assert remote.status == "finished", (remote.failure_reason, out.decode())
    assert LeaderboardEntry.objects.get(submission=remote).result["Accuracy"] == 1.0
    assert Submission.objects.get(pk=platform_sid).status == "submitted"  # not the host's to take


def test_demo_in_process_worker_evaluates_with_no_other_command(
    live_server, team, participant, demo_challenge, settings, transport
):
    """What `make demo` runs: the server starts its own worker (fresh token, old one revoked)."""
    from assay.server import inprocess_worker
    from assay.server.submissions.models import WorkerToken

    settings.VAR_DIR = settings.MEDIA_ROOT  # the worker keeps its cache under VAR_DIR/worker
    settings.INPROCESS_WORKER_TRANSPORT = transport
    worker = inprocess_worker.start(live_server.url)
    assert worker.transport == transport
    try:
        first = WorkerToken.objects.get(name=inprocess_worker.NAME)
        sid = post_submission(participant, demo_challenge.phases.get(codename="dev"), PERFECT.read_bytes())
        wait_for(lambda: Submission.objects.get(pk=sid).status == "finished", 120, "the in-process worker")
        assert LeaderboardEntry.objects.get(submission_id=sid).result["Accuracy"] == 1.0
        assert worker.thread.is_alive()
    finally:
        worker.stop()
        worker.thread.join(30)
    second = inprocess_worker.start(live_server.url)  # a restart revokes the previous token
    second.stop()
    second.thread.join(30)
    first.refresh_from_db()
    assert first.revoked_at is not None


def test_the_in_process_worker_waits_for_its_server_instead_of_logging_failures():
    """`make demo` starts the worker a moment before the server listens: no connection error is logged."""
    import socket
    import threading

    from assay.server.inprocess_worker import _wait_for_server

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    listening = threading.Event()
    accepted = threading.Event()

    def listen_later() -> None:
        time.sleep(0.5)
        server = socket.create_server(("127.0.0.1", port))
        listening.set()
        server.settimeout(60)
        try:
            server.accept()[0].close()
            accepted.set()
        finally:
            server.close()

    threading.Thread(target=listen_later, daemon=True).start()
    _wait_for_server(f"http://127.0.0.1:{port}", timeout=60)
    assert listening.is_set()  # it did not return before the server listened
    assert accepted.wait(5)  # it returned because it reached the server (not because its 60 s ran out)
