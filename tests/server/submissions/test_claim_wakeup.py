"""A waiting claim is woken by new work, not by polling the queue (``queue.claim_waiting``).

Real threads and real commits (transactional tests): the claim waits on its own connection while
the test submits, releases, lets a lease run out, says the worker is leaving, or changes the queue
from another connection (as another server process would). What is asserted is that the claim
wakes for each of these and looks at the queue only a couple of times while idle; the CPU it saves
is measured, not asserted (bench/idle_workers.py, BENCHMARKS.md).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from assay.server.submissions.models import Submission
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(admin_user, demo_challenge):
    row, _ = create_worker_token(admin_user, "test worker")
    return row


@pytest.fixture
def looks(monkeypatch) -> list[float]:
    """Every time a waiting claim looks at the queue (``claim_several``), from any thread."""
    seen: list[float] = []
    real = queue.claim_several

    def counted(*args, **kwargs):
        seen.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(queue, "claim_several", counted)
    return seen


class Waiting:
    """``claim_waiting`` on a thread of its own (its own database connection, as a request has)."""

    def __init__(self, token, worker_id: str, wait: float = 15) -> None:
        self.result: Submission | None = None

        def run() -> None:
            try:
                self.result = queue.claim_waiting(token, worker_id, wait=wait)
            finally:
                connections.close_all()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 20) -> Submission | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the claim is still waiting"
        return self.result


def new_submission(participant, challenge, content: bytes = b'{"dev-a0": 1}') -> Submission:
    phase = challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(content), "preds.json", SubmissionFields())


def test_an_idle_claim_does_not_poll_and_a_new_submission_wakes_it(
    token, team, participant, demo_challenge, looks, settings
):
    settings.WORKER_CLAIM_RECHECK_SECONDS = 600  # past the join below: only the announcement can wake it
    settings.WORKER_LONG_POLL_SECONDS = 600
    waiting = Waiting(token, "w1", wait=600)
    time.sleep(2)
    assert waiting.thread.is_alive() and len(looks) <= 2  # polling every 20 ms looked ~100 times
    before = len(looks)
    sub = new_submission(participant, demo_challenge)
    claimed = waiting.join(60)
    assert claimed is not None and claimed.pk == sub.pk and claimed.lease_owner == "w1"
    assert len(looks) == before + 1  # woken: one more look, which found the job


def test_a_released_job_wakes_a_waiting_claim(token, team, participant, demo_challenge, settings):
    settings.WORKER_CLAIM_RECHECK_SECONDS = 60  # only the announcement can wake it in time
    sub = new_submission(participant, demo_challenge)
    held = queue.claim_next(token, "w1")
    waiting = Waiting(token, "w2")
    time.sleep(1)
    queue.release(token, sub.pk, held.attempt)
    claimed = waiting.join(10)
    assert claimed is not None and claimed.pk == sub.pk and claimed.attempt == 2


def test_a_lease_running_out_wakes_a_waiting_claim(token, team, participant, demo_challenge, settings):
    settings.WORKER_CLAIM_RECHECK_SECONDS = 60
    sub = new_submission(participant, demo_challenge)
    queue.claim_next(token, "w1")
    Submission.objects.filter(pk=sub.pk).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=1))
    claimed = Waiting(token, "w2").join(10)
    assert claimed is not None and (claimed.pk, claimed.attempt, claimed.expired_leases) == (sub.pk, 2, 1)


def test_a_leaving_worker_s_claim_ends_and_takes_nothing(token, team, participant, demo_challenge, admin_user):
    waiting = Waiting(token, "w-going")
    time.sleep(1)
    queue.leave(create_worker_token(admin_user, "someone else")[0], "w-going")  # not this token's worker
    time.sleep(0.5)
    assert waiting.thread.is_alive()
    queue.leave(token, "w-going")
    assert waiting.join(5) is None
    sub = new_submission(participant, demo_challenge)
    assert queue.claim_waiting(token, "w-going", wait=5) is None  # a late claim of the same worker too
    assert Submission.objects.get(pk=sub.pk).status == "submitted"
    assert queue.claim_waiting(token, "w-staying", wait=5).pk == sub.pk


def test_a_new_token_with_a_deleted_token_s_id_inherits_no_leave(token, team, participant, demo_challenge, admin_user):
    """SQLite gives a deleted newest row's id to the next row: a token made then is not the one that left
    (a process remembers a leave for ``LEFT_FOR`` seconds; CI's parallel run met this between two tests)."""
    queue.leave(token, "w1")
    reused = token.pk
    token.delete()
    again, _ = create_worker_token(admin_user, "a later worker")
    if again.pk != reused:  # PostgreSQL never reuses an id: force the clash the way SQLite makes it
        type(again).objects.filter(pk=again.pk).update(id=reused)
        again.pk = again.id = reused
    sub = new_submission(participant, demo_challenge)
    claimed = queue.claim_waiting(again, "w1", wait=5)
    assert claimed is not None and claimed.pk == sub.pk


@pytest.fixture(params=["fresh", "after_another_database"])
def watcher_history(request, monkeypatch):
    """``after_another_database``: this process's watcher was started for another database (an earlier test's,
    or before a settings change) and is still alive; the claim must get a watcher of its own database."""
    if request.param == "after_another_database":
        from assay.server.submissions.services import wakeup

        stale = threading.Thread(target=threading.Event().wait, args=(30,), daemon=True)
        stale.start()
        monkeypatch.setattr(wakeup._hub, "watcher", stale)
        monkeypatch.setattr(wakeup._hub, "watched", ("sqlite", "/elsewhere/other.sqlite3", "", ""), raising=False)


def test_a_change_from_another_connection_wakes_a_waiting_claim(
    token, team, participant, demo_challenge, settings, watcher_history
):
    """What another server process does: commit on its own connection (and NOTIFY on PostgreSQL)."""
    settings.WORKER_CLAIM_RECHECK_SECONDS = 60
    sub = new_submission(participant, demo_challenge)
    Submission.objects.filter(pk=sub.pk).update(status="submitting")  # not claimable yet
    waiting = Waiting(token, "w1")
    time.sleep(1)
    table = Submission._meta.db_table
    if connection.vendor == "sqlite":
        import sqlite3

        other = sqlite3.connect(connection.settings_dict["NAME"])
        other.execute(f"UPDATE {table} SET status = 'submitted' WHERE id = ?", (sub.pk,))
        other.commit()
        other.close()
    elif connection.vendor == "postgresql":
        import psycopg

        params = connection.get_connection_params()
        for key in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(key, None)
        with psycopg.connect(**params) as other:
            other.execute(f"UPDATE {table} SET status = 'submitted' WHERE id = %s", (sub.pk,))
            other.execute("SELECT pg_notify('assay_queue', %s)", (sub.queue_name,))
    else:
        pytest.skip(f"no cross-process signal for {connection.vendor}")
    claimed = waiting.join(10)
    assert claimed is not None and claimed.pk == sub.pk


def test_a_claim_whose_token_is_revoked_while_it_waits_gets_no_job(token, team, participant, demo_challenge, looks):
    """The token was checked when the claim began; a job that arrives after its revocation is not handed out."""
    waiting = Waiting(token, "w-revoked")
    deadline = time.monotonic() + 10
    while not looks and time.monotonic() < deadline:  # its first look at the (empty) queue is done
        time.sleep(0.05)
    time.sleep(0.2)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    sub = new_submission(participant, demo_challenge)
    assert waiting.join() is None
    sub.refresh_from_db()
    assert sub.status == "submitted" and sub.lease_owner == ""


def test_the_first_claim_of_a_process_compiles_its_locking_query_inside_the_transaction(
    token, team, participant, demo_challenge, monkeypatch
):
    """The claim query is compiled once per process; compiling a SELECT … FOR UPDATE in autocommit mode is
    refused on PostgreSQL, so a fresh server process answered its first worker's claim with an error."""
    monkeypatch.setattr(queue, "_CLAIMS", {})  # as in a fresh process
    sub = submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "preds.json", SubmissionFields())
    claimed = queue.claim_next(token, "w1")
    assert claimed is not None and claimed.pk == sub.pk
