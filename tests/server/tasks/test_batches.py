"""Batch handlers: the runner takes the consecutive due tasks of a batch handler's name by one statement and hands
them to one call, yet each task keeps its own outcome (a failure retried alone, a permanent one failed alone, the
others done by one statement), each still runs exactly once with several runners, and the runner's pause lets a
stream of tasks gather into one batch."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assay.server import tasks
from assay.server.tasks import queue
from assay.server.tasks.models import Task
from tests.server.tasks.test_tasks import drain_together

S = Task.State
batches: list[list[int]] = []
failing: dict[int, BaseException] = {}
singles: list[int] = []


@tasks.handler("test.batch", batch=True)
def batch(payloads: list[dict]) -> list[BaseException | None]:
    batches.append([p["n"] for p in payloads])
    return [failing.get(p["n"]) for p in payloads]


@tasks.handler("test.batch_broken", batch=True)
def broken(payloads: list[dict]) -> list[BaseException | None]:
    raise ConnectionError("the database behind the batch went away")


@tasks.handler("test.single")
def single(payload: dict) -> None:
    singles.append(payload["n"])


@pytest.fixture(autouse=True)
def clean():
    batches.clear()
    failing.clear()
    singles.clear()


def _updates(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]


@pytest.mark.django_db
def test_a_batch_is_taken_and_marked_done_by_one_statement_each_and_each_task_keeps_its_own_outcome():
    for n in range(6):
        tasks.enqueue("test.batch", {"n": n})
    failing[2] = ConnectionError("mail server down")
    failing[4] = tasks.Permanent("the user is gone")
    with CaptureQueriesContext(connection) as captured:
        assert tasks.run_due() == 6
    assert batches == [[0, 1, 2, 3, 4, 5]]  # one call, oldest first
    # the take, the done mark of the four that succeeded, the retry of one and the failure of the other
    assert len(_updates(captured)) == 4
    rows = {row.payload["n"]: row for row in Task.objects.all()}
    assert {n for n, row in rows.items() if row.state == S.DONE} == {0, 1, 3, 5}
    assert (rows[2].state, rows[2].attempts, rows[2].last_error) == (S.QUEUED, 1, "ConnectionError: mail server down")
    assert rows[2].run_after > timezone.now()  # after a backoff
    assert (rows[4].state, rows[4].last_error) == (S.FAILED, "the user is gone")
    assert all(rows[n].attempts == 1 and rows[n].lease_expires_at is None for n in (0, 1, 3, 5))
    failing.clear()
    assert tasks.run_due(now=timezone.now() + dt.timedelta(hours=2)) == 1  # only the one that failed comes back
    assert batches[-1] == [2]
    assert Task.objects.get(pk=rows[2].pk).state == S.DONE


@pytest.mark.django_db
def test_a_batch_handler_that_raises_retries_every_task_of_its_batch():
    for n in range(3):
        tasks.enqueue("test.batch_broken", {"n": n})
    assert tasks.run_due() == 3
    assert set(Task.objects.values_list("state", "attempts")) == {(S.QUEUED, 1)}


@pytest.mark.django_db
def test_only_consecutive_tasks_of_a_name_make_a_batch_and_a_lone_one_runs_through_run():
    for n, name in enumerate(["test.batch", "test.batch", "test.single", "test.batch"]):
        tasks.enqueue(name, {"n": n})
    assert tasks.run_due() == 4
    assert batches == [[0, 1], [3]] and singles == [2]
    tasks.enqueue("test.batch", {"n": 9})
    assert queue.run(queue.claim()) is True  # a batch handler run alone: a batch of one
    assert batches[-1] == [9]


@pytest.mark.django_db
def test_a_row_taken_by_another_runner_after_the_read_is_left_out_of_the_batch():
    for n in range(4):
        tasks.enqueue("test.batch", {"n": n})
    read = list(queue._due_query(queue.BATCH).instances(now=connection.ops.adapt_datetimefield_value(timezone.now())))
    # another runner (its own read of the row) took the second one between this runner's read and its take
    other = queue._take(Task.objects.get(pk=read[1].pk), timezone.now())
    assert other is not None
    taken = queue._take_several(read, timezone.now())
    assert [row.payload["n"] for row in taken] == [0, 2, 3]
    assert all(row.state == S.RUNNING and row.attempts == 1 for row in taken)
    assert queue.run_several(taken) == 3
    assert Task.objects.get(pk=other.pk).state == S.RUNNING  # still the other runner's, untouched by the done mark
    assert queue.run(other) is True and batches == [[0, 2, 3], [1]]


@pytest.mark.django_db
def test_a_row_out_of_attempts_in_a_batch_is_failed_not_run():
    for n in range(3):
        tasks.enqueue("test.batch", {"n": n}, max_attempts=1 if n == 1 else 8)
    read = list(queue._due_query(queue.BATCH).instances(now=connection.ops.adapt_datetimefield_value(timezone.now())))
    assert [row.payload["n"] for row in queue._take_several(read, timezone.now())] == [0, 1, 2]  # its runner dies
    later = timezone.now() + dt.timedelta(seconds=601)
    assert tasks.run_due(now=later) == 2
    assert batches == [[0, 2]]
    states = dict(Task.objects.values_list("payload__n", "state"))
    assert states == {0: S.DONE, 1: S.FAILED, 2: S.DONE}


@pytest.mark.django_db(transaction=True)
def test_runners_draining_a_batch_handlers_tasks_together_run_each_exactly_once():
    with transaction.atomic():
        for n in range(80):
            tasks.enqueue("test.batch", {"n": n})
    assert not drain_together(3)
    assert Counter(n for b in batches for n in b) == Counter(range(80))
    assert set(Task.objects.values_list("state", flat=True)) == {S.DONE}
    assert set(Task.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_the_runners_pause_after_a_short_batch_gathers_the_next_tasks_into_one_batch():
    tasks.enqueue("test.batch", {"n": 0})
    pauses = []

    def pause() -> None:  # results arrive while the runner waits (their commits set the wake-up)
        pauses.append(len(batches))
        if len(pauses) == 1:
            for n in range(1, 6):
                tasks.enqueue("test.batch", {"n": n})
            queue.wakeup.set()

    queue.wakeup.clear()
    assert queue.run_due(woken_only=True, pause=pause) == 6
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert pauses == [1, 2]  # after each short batch that ran; the second found no wake-up: the round ends
    queue.wakeup.clear()
    assert queue.run_due(woken_only=True, pause=pause) == 0 and pauses == [1, 2]  # nothing ran: no pause
