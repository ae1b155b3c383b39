"""A worker that loses no work, end to end: the real ``assay worker`` command against a live server.

- SIGTERM stops it within seconds in every state: waiting in its long-poll claim, retrying a server
  it cannot reach, downloading a file, evaluating, and retrying a report while the server is down.
  A job in hand goes back to the queue (never failed); a claim it leaves behind takes no job; a
  result it could not report is kept in its workdir and sent when it starts again.
- A result finished while the server was unreachable still lands after the lease ran out and the
  job was claimed again: the later attempt is superseded.

The server is reached through a small TCP proxy that can be cut (every connection dropped) or
slowed down, so "unreachable" and "downloading" are real network states, not mocks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from django.utils import timezone

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services import queue
from assay.server.submissions.services.errors import LeaseLost
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import register_team

from .test_worker_e2e import PERFECT, _worker_command, post_submission, slow_challenge, wait_for  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

#: How long a SIGTERM'd worker may take to exit before the test calls it hung: a hang limit, not a measure.
#: Each test makes what the worker was doing last far longer (a 600 s evaluation, a 200 s download, retries
#: for minutes), so exiting within it at all shows the stop cut that short; the long-poll (20 s) shows it
#: by the worker's "leave", which only a stopping worker sends.
HANG_LIMIT = 60.0


class Proxy:
    """TCP proxy to the live server: ``cut()`` drops every connection until ``restore()``;
    ``rate`` (bytes/s) slows what the server sends."""

    def __init__(self, target: str, rate: float | None = None) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.rate = rate
        self.up = True
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.up = False
        for conn in list(self.conns):
            _close(conn)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.rate), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, rate: float | None) -> None:
        try:
            while self.up and (data := src.recv(16384)):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Running:
    """An ``assay worker`` subprocess whose output is collected as it comes."""

    def __init__(self, url: str, token: str, workdir, *extra: str) -> None:
        self.proc = _worker_command(url, token, workdir, *extra)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def terminate(self) -> None:
        """SIGTERM, and the process exits (within :data:`HANG_LIMIT`, else it is killed and the test fails)."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(HANG_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"the worker ignored SIGTERM for {HANG_LIMIT:.0f} s:\n{self.output}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def running():
    started: list[Running] = []

    def start(*args) -> Running:
        started.append(Running(*args))
        return started[-1]

    yield start
    for worker in started:
        worker.kill()
        print(f"--- worker output ---\n{worker.output}")  # shown when a test fails


@pytest.fixture
def proxies():
    made: list[Proxy] = []

    def make(target: str, rate: float | None = None) -> Proxy:
        made.append(Proxy(target, rate))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def token(admin_user) -> tuple[WorkerToken, str]:
    return create_worker_token(admin_user, "resilience")


@pytest.fixture
def joined(slow_challenge, participant):  # noqa: F811 - the fixture imported above
    """The participant's team, registered in the slow challenge; returns the dev phase."""

    register_team(slow_challenge, participant, "Team Resilient")
    return slow_challenge.phases.get(codename="dev")


def sleeping(seconds: float) -> bytes:
    payload = json.loads(PERFECT.read_text())
    payload["sleep"] = seconds
    return json.dumps(payload).encode()


def status_of(sid: int) -> str:
    return Submission.objects.get(pk=sid).status


def fetched_everything(workdir) -> bool:
    """The submission, the script and the annotation are in the worker's cache: it is evaluating."""
    return len([f for f in (workdir / "cache").glob("*/*") if f.is_file() and not f.name.startswith(".")]) >= 3


def test_sigterm_while_waiting_in_the_long_poll(
    live_server, token, joined, participant, running, tmp_path, monkeypatch
):
    left: list[str] = []
    real_leave = queue.leave
    monkeypatch.setattr(queue, "leave", lambda *a, **k: (left.append(a[1]), real_leave(*a, **k))[1])
    worker = running(live_server.url, token[1], tmp_path / "w")
    wait_for(lambda: worker.said("polling"), 60, "the worker to start")
    time.sleep(1.5)  # inside its 20 s claim
    worker.terminate()
    assert len(left) == 1, worker.output  # the claim was ended by the worker's leave, not waited out
    assert worker.proc.returncode == 0, worker.output
    sid = post_submission(participant, joined, sleeping(0))  # the claim it left behind takes nothing
    time.sleep(1.5)
    assert status_of(sid) == "submitted"


def test_sigterm_while_the_server_is_unreachable(running, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = running(f"http://127.0.0.1:{port}", "aw_nothing", tmp_path / "w")
    wait_for(lambda: worker.said("retrying in"), 60, "the worker to retry")
    time.sleep(1)
    worker.terminate()  # its retries would go on for minutes


def test_sigterm_while_downloading_hands_the_job_back(
    live_server, token, joined, participant, running, proxies, tmp_path
):
    slow = proxies(live_server.url, rate=20_000)  # 4 MB at 20 kB/s: ~200 s of download
    sid = post_submission(participant, joined, json.dumps({"pad": "x" * 4_000_000}).encode())
    worker = running(slow.url, token[1], tmp_path / "w")
    wait_for(lambda: status_of(sid) == "running", 60, "the claim")
    time.sleep(1.5)
    assert not any((tmp_path / "w" / "cache").rglob("*.json")), "the download finished already"
    worker.terminate()
    sub = Submission.objects.get(pk=sid)
    assert (sub.status, sub.expired_leases, sub.failure_reason) == ("submitted", 0, ""), worker.output


def test_sigterm_while_evaluating_hands_the_job_back(live_server, token, joined, participant, running, tmp_path):
    sid = post_submission(participant, joined, sleeping(600))
    worker = running(live_server.url, token[1], tmp_path / "w")
    wait_for(lambda: status_of(sid) == "running", 60, "the claim")
    wait_for(lambda: worker.said(f"submission {sid} attempt 1: evaluating"), 30, "the evaluation")
    time.sleep(1)
    worker.terminate()
    sub = Submission.objects.get(pk=sid)
    assert (sub.status, sub.expired_leases) == ("submitted", 0), worker.output


@pytest.fixture
def cut_off_while_evaluating(live_server, token, joined, participant, running, proxies, settings, tmp_path):
    """Start a worker (workdir ``tmp_path / "w"``, 2 s leases) behind a proxy on a job that sleeps
    ``seconds``, and cut the proxy once it evaluates; returns (proxy, submission id, worker)."""

    def start(seconds: float) -> tuple[Proxy, int, Running]:
        settings.WORKER_LEASE_SECONDS = 2
        proxy = proxies(live_server.url)
        sid = post_submission(participant, joined, sleeping(seconds))
        worker = running(proxy.url, token[1], tmp_path / "w")
        wait_for(lambda: fetched_everything(tmp_path / "w"), 60, "the evaluation")
        proxy.cut()
        return proxy, sid, worker

    return start


def test_sigterm_while_retrying_a_report_keeps_the_result_for_the_next_start(
    cut_off_while_evaluating, token, running, tmp_path
):
    proxy, sid, worker = cut_off_while_evaluating(3)
    wait_for(lambda: worker.said("complete failed"), 60, "the report to be retried")
    worker.terminate()  # its retries of the report would go on for minutes
    assert [p.name for p in (tmp_path / "w" / "outbox").iterdir()] == [f"{sid}-1.json"]
    assert status_of(sid) == "running"  # not handed back: its result exists
    wait_for(lambda: Submission.objects.get(pk=sid).lease_expires_at < timezone.now(), 10, "the lease to run out")
    proxy.restore()
    again = running(proxy.url, token[1], tmp_path / "w", "--once")  # the same workdir, started again
    wait_for(lambda: status_of(sid) == "finished", 60, "the kept result")
    sub = Submission.objects.get(pk=sid)
    assert sub.attempt == 1 and LeaderboardEntry.objects.get(submission=sub).result["Accuracy"] == 1.0
    # the worker drops its copy only once the server has answered, a moment after the row says finished
    wait_for(lambda: not list((tmp_path / "w" / "outbox").iterdir()), 30, "the kept copy to be dropped")
    again.terminate()


def test_a_result_finished_during_an_outage_lands_after_the_lease_ran_out(cut_off_while_evaluating, token):
    proxy, sid, worker = cut_off_while_evaluating(4)  # the server is out of reach while it evaluates and reports
    second = wait_for(lambda: queue.claim_next(token[0], "another-worker"), 30, "the lease to run out")
    assert (second.pk, second.attempt, second.expired_leases) == (sid, 2, 1)
    wait_for(lambda: worker.said("complete failed"), 60, "the first worker's report to be retried")
    proxy.restore()
    wait_for(lambda: status_of(sid) == "finished", 60, "the late result")
    sub = Submission.objects.get(pk=sid)
    assert LeaderboardEntry.objects.get(submission=sub).result["Accuracy"] == 1.0
    with pytest.raises(LeaseLost):
        queue.heartbeat(token[0], sid, 2)  # attempt 2 was superseded: its worker hears "lease lost"
    assert worker.proc.poll() is None  # the worker goes on serving
    worker.terminate()
