"""``assay host workers CHALLENGE`` against a live server: the clear line when no worker was seen, then the worker
with the job it runs once one claims a submission, and the refusal a participant gets."""

from __future__ import annotations

import json

import pytest

from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import authenticate_worker, create_worker_token
from tests.factories import upload

from .test_client import run  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    from assay.cli import output

    for console in (output.console, output.err_console):
        monkeypatch.setattr(console, "_width", 160)


def test_host_workers_says_when_none_was_seen_then_lists_them(live_server, world, users, run):  # noqa: F811
    challenge = world["challenge"]
    run("login", "--server", live_server.url, "-u", "host1", "--password", "pw")
    create_worker_token(None, "never-connected")  # a token alone is no worker
    out = run("host", "workers", str(challenge.pk))
    assert "queue default (the platform's workers)" in out
    assert "no worker has been seen on this queue for 10 minutes, so submissions wait until one connects" in out
    assert "the platform's administrators run these workers" in out

    sub = submit(users["participant"], challenge.phases.get(codename="dev"), upload(), "p.json", SubmissionFields())
    out = run("host", "workers", str(challenge.pk))
    assert "; 1 submission of this challenge waiting" in out and "no worker has been seen" in out

    _, token = create_worker_token(None, "gpu-box")
    assert queue.claim_next(authenticate_worker(token), "gpu-box/pid-7").pk == sub.pk
    idle, _ = create_worker_token(None, "spare-box")
    WorkerToken.objects.filter(pk=idle.pk).update(last_used_at=sub.submitted_at)
    out = run("host", "workers", str(challenge.pk))
    assert "Workers seen in the last 10 minutes" in out and "no worker has been seen" not in out
    assert f"submission {sub.pk} ({sub.phase.name}) on gpu-box/pid-7" in out
    assert "spare-box" in out and "idle, waiting for work" in out and "waiting;" not in out
    body = json.loads(run("host", "workers", str(challenge.pk), "--json"))
    assert body["online"] and {w["name"] for w in body["workers"]} == {"gpu-box", "spare-box"}

    run("login", "--server", live_server.url, "--name", "alice", "-u", "alice", "--password", "pw")
    out = run("host", "workers", str(challenge.pk), "--server", "alice", code=1)
    assert "✗ only the challenge's hosts may do this" in out
