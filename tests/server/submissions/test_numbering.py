"""Submission numbers: every path that numbers one (a submit, a re-run's copy) takes the team's one lock, so
submits and re-runs at the same time never give two submissions of a team in a phase the same number.

The race shows on PostgreSQL (row locks); SQLite's IMMEDIATE transactions serialise every writer, so there the
same test passes whatever the code does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assay.server.challenges.models import Participation
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle
from assay.server.submissions.services.submit import lock_numbering
from tests.server.submissions.test_submit import dev, do_submit

SOURCES = 6  # submissions re-run at once, as many submits beside them


def _open_phase(demo_challenge):
    """The dev phase with room for every submission the test makes, and re-runs allowed to participants."""
    demo_challenge.allow_participants_resubmissions = True
    demo_challenge.save()
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 1000
    phase.save()
    return phase


@pytest.mark.django_db(transaction=True)
def test_submits_and_reruns_at_once_never_share_a_number(team, participant, host, demo_challenge, media):
    phase = _open_phase(demo_challenge)
    sources = [do_submit(participant, phase).pk for _ in range(SOURCES)]
    start = threading.Barrier(2 * SOURCES, timeout=60)

    def rerun(i: int) -> int:
        sub = Submission.objects.get(pk=sources[i])
        start.wait()
        if i % 2:
            return lifecycle.rerun(host, sub, as_new=True).submission_number  # no limits: its own path
        return lifecycle.rerun(participant, sub).submission_number

    def submit(i: int) -> int:
        start.wait()
        return do_submit(participant, phase, content=b'{"n": %d}' % i).submission_number

    def run(job) -> int:
        try:
            return job[0](job[1])
        finally:
            connection.close()

    jobs = [(rerun, i) for i in range(SOURCES)] + [(submit, i) for i in range(SOURCES)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        given = list(pool.map(run, jobs))  # an error in any thread (a deadlock too) is raised here
    stored = list(Submission.objects.filter(phase=phase, participant_team=team).values_list("submission_number"))
    assert sorted(n for (n,) in stored) == list(range(1, 3 * SOURCES + 1))
    assert sorted(given) == list(range(SOURCES + 1, 3 * SOURCES + 1))
    copies = Submission.objects.filter(phase=phase, rerun_resumed_at__isnull=False)
    assert copies.count() == SOURCES and not copies.filter(pk__in=sources).exists()
    assert set(Submission.objects.filter(pk__in=sources).values_list("status", flat=True)) == {"cancelled"}


@pytest.mark.django_db
def test_a_copy_locks_the_registration_before_the_row(team, participant, host, demo_challenge):
    """Submit's order (registration, then submission rows: a select-one phase's unpublishing): the other order
    would let a re-run and a submit each wait for the other's lock."""
    sub = do_submit(participant, _open_phase(demo_challenge))
    with CaptureQueriesContext(connection) as ctx:
        copy = lifecycle.rerun(participant, sub)
    assert copy.submission_number == 2
    locks = [q["sql"] for q in ctx.captured_queries if "FOR UPDATE" in q["sql"]]
    if not connection.features.has_select_for_update:
        assert locks == []  # SQLite: the IMMEDIATE transaction took the database's write lock at BEGIN
        return
    registration, row = Participation._meta.db_table, Submission._meta.db_table
    # the first two: the standings the copy's cancelled original leaves take their own locks afterwards
    assert f'FROM "{registration}"' in locks[0] and f'FROM "{row}"' in locks[1], locks


@pytest.mark.django_db
def test_an_in_place_rerun_takes_no_number(team, participant, host, demo_challenge):
    sub = do_submit(participant, _open_phase(demo_challenge))
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    with mock.patch.object(lifecycle, "lock_numbering", wraps=lifecycle.lock_numbering) as numbering:
        again = lifecycle.rerun(host, sub)
    assert again.pk == sub.pk and again.submission_number == 1 and again.status == "submitted"
    numbering.assert_not_called()  # neither serialised with the team's submits nor counted against its limits


@pytest.mark.django_db(transaction=True)
def test_numbering_outside_a_transaction_is_refused(team, demo_challenge):
    """The lock would end with the statement that took it: a number read after it could be anyone's."""
    with pytest.raises(RuntimeError, match="transaction"):
        lock_numbering(dev(demo_challenge), team)
    with transaction.atomic():
        assert lock_numbering(dev(demo_challenge), team).take(limits=False) == 1
