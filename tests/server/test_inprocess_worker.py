"""The in-process worker of ``assay demo`` is restarted when it dies, and ``/readyz`` says 503 (its
``workers`` check, with the reason) while none is alive; ``/healthz``, the liveness probe, stays 200: the
process still serves requests. A server that runs no in-process worker is unaffected."""

from __future__ import annotations

import pytest

from assay.server import inprocess_worker
from assay.server.submissions.models import Submission, WorkerToken
from assay.worker import loop

from .submissions.test_worker_e2e import PERFECT, TRANSPORTS, post_submission, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_is_ok_without_an_in_process_worker(client):
    assert inprocess_worker.health() is None
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def _workers_check(client) -> tuple[int, dict]:
    response = client.get("/readyz?skip=database,storage")
    return response.status_code, response.json()["checks"]["workers"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_dead_in_process_worker_is_restarted_and_healthz_says_so_meanwhile(
    live_server, client, team, participant, demo_challenge, settings, monkeypatch, transport
):
    settings.VAR_DIR = settings.MEDIA_ROOT
    settings.INPROCESS_WORKER_TRANSPORT = transport
    monkeypatch.setattr(inprocess_worker, "RESTART_DELAYS", (2.0,))
    real_run = loop.Worker.run
    calls = []

    def dies_once(self, max_jobs=None):
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")  # anything escaping the loop kills the thread's worker
        return real_run(self, max_jobs)

    monkeypatch.setattr(loop.Worker, "run", dies_once)
    supervised = inprocess_worker.start(live_server.url)
    try:
        wait_for(lambda: supervised.problem, 30, "the first worker to die")
        assert client.get("/healthz").status_code == 200  # alive: the process serves requests
        assert _workers_check(client) == (
            503,
            {"ok": False, "detail": "the in-process worker is not running; it is being restarted"},
        )
        wait_for(lambda: supervised.restarts == 1 and supervised.problem is None, 30, "the restart")
        assert _workers_check(client) == (200, {"ok": True, "detail": "the in-process worker runs in this process"})
        sid = post_submission(participant, demo_challenge.phases.get(codename="dev"), PERFECT.read_bytes())
        done = wait_for(lambda: Submission.objects.filter(pk=sid, completed_at__isnull=False).first(), 300, "a job")
        assert done.status in ("finished", "failed") and not done.lease_owner  # the restarted worker took it
        assert len(calls) == 2 and calls[0] is not calls[1]  # a fresh Worker (the first one's pool is closed)
    finally:
        supervised.stop()
        supervised.thread.join(30)
    assert not supervised.thread.is_alive()
    assert client.get("/healthz").status_code == 200
    assert _workers_check(client)[1]["detail"] != "the in-process worker runs in this process"  # stopped on purpose


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_revoked_token_stops_the_in_process_worker_for_good(live_server, client, settings, transport):
    settings.VAR_DIR = settings.MEDIA_ROOT
    settings.INPROCESS_WORKER_TRANSPORT = transport
    supervised = inprocess_worker.start(live_server.url)
    try:
        WorkerToken.objects.filter(name=inprocess_worker.NAME).update(revoked_at="2030-01-01T00:00:00Z")
        supervised.thread.join(60)  # the next claim is refused: the worker stops and is not restarted
        assert not supervised.thread.is_alive() and supervised.restarts == 0
        assert supervised.problem.startswith("the in-process worker stopped: the server refused the worker token")
        assert client.get("/healthz").status_code == 200
        assert _workers_check(client) == (
            503,
            {"ok": False, "detail": "the in-process worker stopped (its token was refused) and is not restarted"},
        )
    finally:
        supervised.stop()
