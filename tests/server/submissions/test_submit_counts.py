"""The submit's limit counts: far from every limit one query without the dated counts (their cost grows with
the team's history), near one the full counts, and the same answers either way."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.server.submissions.models import Submission
from tests.server.submissions.test_submit import dev, do_submit, refused

pytestmark = pytest.mark.django_db


def _counting_sql(participant, phase) -> tuple[list[str], int]:
    """The SELECTs on submissions one submit ran, and the number it was given."""
    with CaptureQueriesContext(connection) as ctx:
        number = do_submit(participant, phase).submission_number
    table = Submission._meta.db_table
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and table in q["sql"]], number


def test_far_from_every_limit_the_dated_counts_are_not_run(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 10
    phase.save()
    for _ in range(3):
        do_submit(participant, phase)
    Submission.objects.filter(submission_number=2).update(status="cancelled")
    counts, number = _counting_sql(participant, phase)
    assert number == 4
    assert len(counts) == 1 and "submitted_at" not in counts[0], counts


def test_near_a_limit_the_full_counts_run_and_refuse_at_it(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 10
    phase.max_submissions_per_day = 3
    phase.save()
    for _ in range(2):
        do_submit(participant, phase)
    Submission.objects.filter(submission_number=1).update(status="cancelled")  # frees its slot of the day
    counts, number = _counting_sql(participant, phase)  # two rows: below 3, one query
    assert number == 3 and len(counts) == 1
    counts, number = _counting_sql(participant, phase)  # three rows, two counted: the dated counts decide
    assert number == 4 and len(counts) == 2 and "submitted_at" in counts[1], counts
    refused("limit_day", participant, phase)
    phase.max_concurrent_submissions_allowed = 3
    phase.max_submissions_per_day = 100
    phase.save()
    refused("too_many_in_progress", participant, phase)  # from the one query: three in progress
