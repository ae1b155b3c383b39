"""The submit's limit counts read one index alone (sub_team_counts), never a table row per submission the team
made to the phase: their cost grows with the team's history, and every submit runs one of them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.server.submissions.models import Submission
from tests.server.submissions.test_submit import dev, do_submit

pytestmark = pytest.mark.django_db


def _count_queries(participant, phase) -> list[str]:
    """The SELECTs on submissions one submit ran, with their values in them."""
    with CaptureQueriesContext(connection) as ctx:
        do_submit(participant, phase)
    table = Submission._meta.db_table
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"]]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return "\n".join(row[3] for row in cursor.fetchall())
        # a test table is small enough for a sequential scan to win: ask which index the planner would read
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_counts_of_every_submit_and_near_a_limit_read_the_index_alone(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 10
    phase.max_submissions_per_day = 3
    phase.save()
    for _ in range(2):
        do_submit(participant, phase)
    (history,) = _count_queries(participant, phase)  # 2 rows, below every limit: the one query
    history_plan = _plan(history)
    Submission.objects.filter(submission_number=1).update(status="cancelled")  # frees its slot of the day
    _, usage = _count_queries(participant, phase)  # 3 rows, 2 counted: the dated counts decide
    usage_plan = _plan(usage)
    for plan in (history_plan, usage_plan):
        if connection.vendor == "sqlite":
            assert "USING COVERING INDEX sub_team_counts" in plan, plan
        else:
            assert "Index Only Scan using sub_team_counts" in plan, plan
