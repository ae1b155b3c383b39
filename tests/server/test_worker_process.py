"""The embedded worker in its own process (``ASSAY_EMBEDDED_WORKER=process``, the default of ``assay demo``):
it evaluates what the server process accepted, a child killed with SIGKILL is started again and loses no job,
``/readyz`` says whether the child is alive, a refused token stops it for good, and it ends with its server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from django.contrib.auth import get_user_model

from assay.server import inprocess_worker
from assay.server import worker_process as process_mode
from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.submissions.models import Submission, WorkerToken

from .submissions.test_worker_e2e import PERFECT, post_submission, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _workers_check(client) -> tuple[int, dict]:
    response = client.get("/readyz?skip=database,storage")
    return response.status_code, response.json()["checks"]["workers"]


def _finished(sid: int) -> Submission | None:
    return Submission.objects.filter(pk=sid, completed_at__isnull=False).first()


@pytest.fixture
def worker_process(live_server, media, settings, monkeypatch):
    settings.VAR_DIR = settings.MEDIA_ROOT
    settings.TASKS_INPROCESS = True
    monkeypatch.setattr(inprocess_worker, "RESTART_DELAYS", (0.5,))
    supervised = process_mode.start_embedded(live_server.url, mode="process")
    yield supervised
    supervised.stop()


def test_the_worker_process_evaluates_and_is_restarted_after_kill_9(
    worker_process, client, team, participant, demo_challenge
):
    dev = demo_challenge.phases.get(codename="dev")
    assert worker_process.pid != os.getpid() and inprocess_worker.runs_tasks()
    assert _workers_check(client) == (
        200,
        {"ok": True, "detail": f"the in-process worker runs in process {worker_process.pid}"},
    )
    split = ChallengePhaseSplit.objects.filter(phase=dev).order_by("pk").first()
    board = f"/api/v1/phase-splits/{split.pk}/leaderboard"
    assert client.get(board).json()["results"] == []  # and that page is now in the shared read cache
    sid = post_submission(participant, dev, PERFECT.read_bytes())
    done = wait_for(lambda: _finished(sid), 300, "the worker process to evaluate")
    assert done.status == "finished" and not done.lease_owner
    # the result written in the worker process replaced the cached page's version token: seen here at once
    assert len(client.get(board).json()["results"]) == 1

    first = worker_process.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: worker_process.problem, 30, "the supervisor to see the child die")
    assert _workers_check(client) == (
        503,
        {"ok": False, "detail": "the in-process worker is not running; it is being restarted"},
    )
    wait_for(lambda: worker_process.alive() and worker_process.pid != first, 60, "the restart")
    assert worker_process.restarts == 1
    second = post_submission(participant, dev, PERFECT.read_bytes())
    assert wait_for(lambda: _finished(second), 300, "the restarted child to evaluate").status == "finished"
    assert WorkerToken.objects.filter(name=inprocess_worker.NAME, revoked_at__isnull=True).count() == 1

    child = worker_process.process
    worker_process.stop()
    assert child.poll() is not None and not worker_process.alive()
    assert inprocess_worker.health() is None  # stopped on purpose: no longer this process's worker


def test_a_revoked_token_stops_the_worker_process_for_good(worker_process, client):
    WorkerToken.objects.filter(name=inprocess_worker.NAME).update(revoked_at="2030-01-01T00:00:00Z")
    worker_process.thread.join(90)  # its next claim is refused: the child exits and is not started again
    assert not worker_process.thread.is_alive() and worker_process.restarts == 0
    assert worker_process.process.returncode == 3
    assert _workers_check(client) == (
        503,
        {"ok": False, "detail": "the in-process worker stopped (its token was refused) and is not restarted"},
    )


def test_the_child_ends_when_its_server_is_killed(tmp_path):
    """A server killed with SIGKILL cannot stop its child: the child sees its stdin close (and, on Linux,
    gets SIGTERM from the kernel) and ends by itself, without Django ever set up (nothing was said)."""
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-m", "assay.server.worker_process", "http://x", "inprocess"],
                                 stdin=subprocess.PIPE)
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        if open(f"/proc/{child}/stat").read().split()[2] == "Z":  # ended, waiting for init to reap it
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_a_task_committed_in_the_server_process_wakes_the_child_s_runner(live_server, media, settings, monkeypatch):
    """The child polls for tasks only every minute here: a sign-up e-mail queued by the server process runs
    long before that, woken through the child's stdin."""
    from assay.server.notifications.services.mail import queue_email
    from assay.server.tasks.models import Task

    monkeypatch.setenv("ASSAY_TASKS_POLL_SECONDS", "60")
    settings.VAR_DIR = settings.MEDIA_ROOT
    settings.TASKS_INPROCESS = True
    user = get_user_model().objects.create_user("bob", "bob@uni.example", "pw")
    supervised = process_mode.start_embedded(live_server.url, mode="process")
    try:
        queue_email(user, "first", "body")  # the child's first round may take this one
        wait_for(lambda: not Task.objects.exclude(state="done").exists(), 60, "the first task")
        queue_email(user, "second", "body")
        wait_for(lambda: not Task.objects.exclude(state="done").exists(), 30, "the second task, woken")
        assert Task.objects.filter(state="done").count() == 2
    finally:
        supervised.stop()


def test_the_child_ends_cleanly_on_repeated_sigterm(worker_process):
    """The server's SIGTERM and the kernel's (its parent died) may come together: the handler only notes them,
    so a second one landing inside the first's work cannot deadlock the child."""
    child = worker_process.process
    wait_for(lambda: _caught(child.pid, signal.SIGTERM), 120, "the child to set its signal handlers")
    for _ in range(5):
        os.kill(child.pid, signal.SIGTERM)
    assert child.wait(60) == 0  # stopped on purpose (its supervisor, not stopping, starts another)


def _in_mask(pid: int, field: str, signum: int) -> bool:
    mask = next(line for line in open(f"/proc/{pid}/status") if line.startswith(field)).split()[1]
    return bool(int(mask, 16) & (1 << (signum - 1)))


def _ignored(pid: int, signum: int) -> bool:
    return _in_mask(pid, "SigIgn:", signum)


def _caught(pid: int, signum: int) -> bool:
    """A handler of the process's own is set for ``signum`` (the child sets SIGTERM's once it serves)."""
    return _in_mask(pid, "SigCgt:", signum)


def test_the_child_of_a_server_that_ignores_ctrl_c_ignores_it_too(live_server, media, settings, monkeypatch):
    """A server started in the background (``cmd &``) ignores SIGINT; a SIGINT to its process group must not
    stop the child alone (its server would only start another), so the child keeps the ignore it inherited.
    A server in a terminal handles Ctrl-C, and then so does its child (the other fixture's child)."""
    settings.VAR_DIR = settings.MEDIA_ROOT
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        supervised = process_mode.start_embedded(live_server.url, mode="process")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        child = supervised.process
        wait_for(lambda: _caught(child.pid, signal.SIGTERM), 120, "the child to set its signal handlers")
        assert _ignored(child.pid, signal.SIGINT)
        assert not _ignored(child.pid, signal.SIGTERM)  # SIGTERM still stops it
    finally:
        supervised.stop()


def test_the_child_of_a_server_in_a_terminal_handles_ctrl_c(worker_process):
    child = worker_process.process
    wait_for(lambda: _caught(child.pid, signal.SIGTERM), 120, "the child to set its signal handlers")
    assert not _ignored(child.pid, signal.SIGINT)
    os.kill(child.pid, signal.SIGINT)
    assert child.wait(60) == 0  # stopped on purpose, cleanly
