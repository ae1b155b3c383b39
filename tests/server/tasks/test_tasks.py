"""The background-task runner: enqueue commits with its transaction, handlers run once, failures come back
after a backoff with jitter and give up after max_attempts, a dead runner's task is taken over, and two
runners draining together never run a task twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connections, transaction
from django.utils import timezone

from assay.server import tasks
from assay.server.tasks import queue, runner
from assay.server.tasks.models import Task

S = Task.State
calls: list[dict] = []
failures_left: dict[str, int] = {}


@tasks.handler("test.record")
def record(payload: dict) -> None:
    calls.append(payload)


@tasks.handler("test.flaky")
def flaky(payload: dict) -> None:
    key = payload["key"]
    if failures_left.get(key, 0) > 0:
        failures_left[key] -= 1
        raise ConnectionError("receiver down")
    calls.append(payload)


@tasks.handler("test.hopeless")
def hopeless(payload: dict) -> None:
    raise tasks.Permanent("the webhook was deleted")


@pytest.fixture(autouse=True)
def clean():
    calls.clear()
    failures_left.clear()


@pytest.mark.django_db
def test_an_enqueued_task_runs_once_with_its_payload():
    tasks.enqueue("test.record", {"n": 1})
    row = Task.objects.get()
    assert row.state == S.QUEUED and row.attempts == 0
    assert tasks.run_due() == 1
    assert calls == [{"n": 1}]
    row.refresh_from_db()
    assert row.state == S.DONE and row.attempts == 1 and row.lease_expires_at is None
    assert tasks.run_due() == 0 and calls == [{"n": 1}]


@pytest.mark.django_db
def test_a_rolled_back_transaction_enqueues_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.enqueue("test.record", {"n": 1})
        raise RuntimeError("the request failed")
    assert not Task.objects.exists()
    assert tasks.run_due() == 0 and calls == []


@pytest.mark.django_db
def test_a_delayed_task_waits_for_its_time():
    tasks.enqueue("test.record", {"n": 2}, delay=60)
    assert tasks.run_due() == 0
    assert tasks.run_due(now=timezone.now() + dt.timedelta(seconds=61)) == 1
    assert calls == [{"n": 2}]


@pytest.mark.django_db
def test_a_failure_is_retried_after_a_backoff_then_succeeds():
    failures_left["a"] = 2
    tasks.enqueue("test.flaky", {"key": "a"})
    assert tasks.run_due() == 1  # failed: not run again at once
    row = Task.objects.get()
    assert row.state == S.QUEUED and row.attempts == 1 and "ConnectionError: receiver down" in row.last_error
    wait = (row.run_after - timezone.now()).total_seconds()
    assert 4 < wait <= 10  # base 10 s, jittered between half and all of it
    later = timezone.now() + dt.timedelta(hours=2)
    assert tasks.run_due(now=later) == 1  # the second try fails too, and waits again
    assert tasks.run_due(now=later) == 0
    assert tasks.run_due(now=later + dt.timedelta(hours=2)) == 1
    row.refresh_from_db()
    assert row.state == S.DONE and row.attempts == 3 and row.last_error == ""
    assert calls == [{"key": "a"}]


@pytest.mark.django_db
def test_a_task_gives_up_after_max_attempts_and_a_permanent_failure_at_once():
    failures_left["b"] = 99
    tasks.enqueue("test.flaky", {"key": "b"}, max_attempts=2)
    tasks.enqueue("test.hopeless", {})
    far = timezone.now() + dt.timedelta(days=1)
    assert tasks.run_due(now=far) == 2
    assert tasks.run_due(now=far + dt.timedelta(days=1)) == 1
    flaky_row, hopeless_row = Task.objects.order_by("id")
    assert (flaky_row.state, flaky_row.attempts) == (S.FAILED, 2)
    assert (hopeless_row.state, hopeless_row.attempts) == (S.FAILED, 1)
    assert hopeless_row.last_error == "the webhook was deleted"
    assert tasks.run_due(now=far + dt.timedelta(days=30)) == 0


def test_backoff_doubles_up_to_the_cap_with_jitter(settings):
    settings.TASKS_RETRY_BASE_SECONDS = 10
    settings.TASKS_RETRY_CAP_SECONDS = 100
    for attempts, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (30, 100)):
        waits = [queue.backoff(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


@pytest.mark.django_db
def test_bad_calls_are_refused_at_the_caller():
    with pytest.raises(ValueError, match="no task handler named 'nope'"):
        tasks.enqueue("nope", {})
    with pytest.raises(TypeError, match="plain JSON"):
        tasks.enqueue("test.record", {"when": timezone.now()})
    with pytest.raises(TypeError, match="plain JSON"):
        tasks.enqueue("test.record", {"x": float("nan")})
    with pytest.raises(TypeError):
        tasks.enqueue("test.record", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tasks.enqueue("test.record", {}, max_attempts=0)
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_a_task_whose_runner_died_is_taken_over_after_its_lease():
    tasks.enqueue("test.record", {"n": 3})
    claimed = queue.claim()  # a runner took it, then died before running it
    assert claimed is not None and claimed.state == S.RUNNING
    assert tasks.run_due() == 0  # the lease still holds
    assert tasks.run_due(now=timezone.now() + dt.timedelta(seconds=601)) == 1
    row = Task.objects.get()
    assert row.state == S.DONE and row.attempts == 2 and calls == [{"n": 3}]
    # the dead runner coming back late does not overwrite its successor's outcome
    assert queue.run(claimed) is True  # (its handler ran: handlers must be safe to repeat)
    row.refresh_from_db()
    assert row.state == S.DONE and row.attempts == 2


@pytest.mark.django_db
def test_a_task_whose_last_allowed_runner_died_gives_up_instead_of_running_again():
    tasks.enqueue("test.record", {"n": 6}, max_attempts=1)
    assert queue.claim() is not None  # its only attempt's runner died
    assert tasks.run_due(now=timezone.now() + dt.timedelta(seconds=601)) == 0
    row = Task.objects.get()
    assert row.state == S.FAILED and row.attempts == 1 and "the lease ran out" in row.last_error
    assert calls == []


@pytest.mark.django_db
def test_a_claim_is_a_read_and_one_conditional_update(django_assert_num_queries):
    tasks.enqueue("test.record", {"n": 7})
    with django_assert_num_queries(2):  # no transaction of its own: the task runner's cost per task
        claimed = queue.claim()
    assert claimed is not None and claimed.state == S.RUNNING and claimed.attempts == 1
    row = Task.objects.get()
    assert (row.state, row.attempts, row.lease_expires_at) == (S.RUNNING, 1, claimed.lease_expires_at)
    with django_assert_num_queries(1):  # nothing due: one read, no write lock taken
        assert queue.claim() is None


@pytest.mark.django_db
def test_an_unknown_handler_fails_the_task_and_old_rows_are_pruned():
    Task.objects.create(name="gone.handler", payload={}, run_after=timezone.now())
    assert tasks.run_due() == 1
    row = Task.objects.get()
    assert row.state == S.FAILED and "no task handler named 'gone.handler'" in row.last_error
    assert queue.prune() == 0
    assert queue.prune(now=timezone.now() + dt.timedelta(days=15)) == 1


def drain_together(runners: int) -> list[BaseException]:
    """``runners`` threads each draining the queue (``run_due``) at once; what they raised."""
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            tasks.run_due()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_runners_draining_together_run_each_task_exactly_once():
    with transaction.atomic():
        for n in range(60):
            tasks.enqueue("test.record", {"n": n})
    assert not drain_together(3)
    assert Counter(c["n"] for c in calls) == Counter(range(60))
    assert set(Task.objects.values_list("state", flat=True)) == {S.DONE}


@pytest.mark.django_db(transaction=True)
def test_the_runner_thread_is_woken_by_a_commit(settings):
    settings.TASKS_POLL_SECONDS = 30  # only the wake-up can make it run within the test's wait
    started = runner.start()
    try:
        with transaction.atomic():
            tasks.enqueue("test.record", {"n": 4})
        for _ in range(100):
            if calls:
                break
            threading.Event().wait(0.05)
        assert calls == [{"n": 4}]
        assert runner.health() is None
    finally:
        started.stop()
        started.thread.join(10)
    assert not started.thread.is_alive()
    assert runner.health() == "the task runner thread is not running"
    runner._current = None


@pytest.mark.django_db(transaction=True)  # the runner refreshes its connection, as outside a request
def test_assay_admin_run_tasks_once_runs_what_is_due():
    from assay.server.commands import run_tasks

    tasks.enqueue("test.record", {"n": 5})
    tasks.enqueue("test.record", {"n": 6}, delay=3600)
    assert run_tasks(once=True) == 1
    assert calls == [{"n": 5}]


@pytest.mark.django_db
def test_a_keyed_task_absorbs_its_key_until_it_first_runs_and_a_retry_holds_nothing_back():
    for n in range(5):  # a burst: one row, the first payload; other keys and unkeyed tasks are apart
        tasks.enqueue("test.flaky", {"key": "k", "n": n}, delay=1, key="board:1")
    tasks.enqueue("test.record", {"n": "other"}, delay=1, key="board:2")
    tasks.enqueue("test.record", {"n": "plain"}, delay=1)
    assert Task.objects.filter(key="board:1").count() == 1
    assert Task.objects.count() == 3
    with pytest.raises(ValueError, match="at most 200"):
        tasks.enqueue("test.record", {}, key="x" * 201)
    failures_left["k"] = 1
    soon = timezone.now() + dt.timedelta(seconds=2)
    assert tasks.run_due(now=soon) == 3  # board:1's run failed: queued again for a retry
    retry = Task.objects.get(key="board:1")
    assert (retry.state, retry.attempts) == (S.QUEUED, 1)
    tasks.enqueue("test.flaky", {"key": "k", "n": 9}, delay=1, key="board:1")  # a new change: not absorbed
    assert Task.objects.filter(key="board:1").count() == 2
    assert tasks.run_due(now=timezone.now() + dt.timedelta(hours=1)) == 2  # the retry and the new one: no clash
    assert sorted(c["n"] for c in calls if c.get("key") == "k") == [0, 9]
    tasks.enqueue("test.flaky", {"key": "k", "n": 10}, key="board:1")  # done rows hold nothing back either
    assert Task.objects.filter(key="board:1", state=S.QUEUED).count() == 1
    with pytest.raises(RuntimeError), transaction.atomic():  # a rolled-back keyed task leaves no row
        tasks.enqueue("test.record", {"n": 11}, key="board:3")
        raise RuntimeError
    assert not Task.objects.filter(key="board:3").exists()


@tasks.handler("test.fan_out")
def fan_out(payload: dict) -> None:
    with transaction.atomic():  # as the evaluation's task queues its e-mails
        for n in range(payload["n"]):
            tasks.enqueue("test.record", {"from": "fan_out", "n": n})


def _task_reads(captured) -> int:
    return sum(1 for q in captured if q["sql"].startswith("SELECT") and "tasks_task" in q["sql"])


@pytest.mark.django_db
def test_a_backlog_is_read_a_batch_at_a_time_each_task_still_taken_alone():
    for n in range(queue.BATCH + 4):
        tasks.enqueue("test.record", {"n": n})
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert tasks.run_due() == queue.BATCH + 4
    assert [c["n"] for c in calls] == list(range(queue.BATCH + 4))  # oldest first
    assert _task_reads(captured.captured_queries) == 3  # a full batch, the rest, and the empty queue
    updates = [q for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 2 * (queue.BATCH + 4)  # taken (a conditional UPDATE each), then done


@pytest.mark.django_db(transaction=True)  # commits: on_commit sets the wake-up
def test_the_runner_reads_no_empty_queue_after_a_short_batch_unless_a_commit_woke_it():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tasks.enqueue("test.record", {"n": 1})
    queue.wakeup.clear()  # as the runner does before each round
    with CaptureQueriesContext(connection) as captured:
        assert queue.run_due(woken_only=True) == 1
    assert _task_reads(captured.captured_queries) == 1
    # a handler's own tasks (a fan-out) commit, which sets the wake-up: the same round reads again and runs them
    tasks.enqueue("test.fan_out", {"n": 3})
    queue.wakeup.clear()
    calls.clear()
    with CaptureQueriesContext(connection) as captured:
        ran = queue.run_due(woken_only=True)
    assert _task_reads(captured.captured_queries) == 3  # the fan-out's task; its e-mails' (woken); none left (woken)
    assert ran == 4 and [c["n"] for c in calls] == [0, 1, 2]
