"""``assay.server.prepared``'s two shortcuts must give what Django gives: instances made without
``Model.__init__`` equal to the queryset's (fields, state, ``select_related`` rows, both ways), and statements
run on SQLite without Django's per-statement ``%s`` -> ``?`` rewrite, which statement-recording and wrapping
(``CaptureQueriesContext``, ``execute_wrapper``) still see."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection, connections
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from assay.server import prepared as prepared_module
from assay.server.prepared import Prepared
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import upload

pytestmark = pytest.mark.django_db
RELATED = ("phase__challenge", "participant_team", "created_by")
MARK = -101


@pytest.fixture
def submissions(team, participant, demo_challenge) -> list[Submission]:
    phase = demo_challenge.phases.get(codename="dev")
    made = [
        submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name=f"m{i}"))
        for i in range(2)
    ]
    Submission.objects.filter(pk=made[1].pk).update(output={"result": [{"public": {"F1": 0.5}}]}, is_public=True)
    return made


def query() -> Prepared:
    return Prepared(Submission.objects.select_related(*RELATED).filter(pk__gt=MARK).order_by("pk"), after=MARK)


def state(obj) -> dict:
    """An instance as the ORM left it: its fields, its state (but the relation cache), its cached relations."""
    fields = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    own = {k: v for k, v in obj._state.__dict__.items() if k != "fields_cache"}
    cached = {name: state(rel) for name, rel in obj._state.__dict__.get("fields_cache", {}).items()}
    return {"type": type(obj), "fields": fields, "state": own, "cached": cached}


def test_instances_equal_the_querysets_with_their_related_rows(submissions):
    expected = list(Submission.objects.select_related(*RELATED).order_by("pk"))
    found = query().instances(after=0)
    assert [state(obj) for obj in found] == [state(obj) for obj in expected]
    sub = found[1]
    assert sub.phase.challenge.pk == sub.phase.challenge_id and sub.created_by.pk == sub.created_by_id
    assert sub.participant_team.pk == sub.participant_team_id
    assert sub.input_file.name == expected[1].input_file.name  # a file field reads as Django's FieldFile
    assert sub.output == {"result": [{"public": {"F1": 0.5}}]} and not sub._state.adding
    assert found[0]._state.fields_cache is not found[1]._state.fields_cache
    with CaptureQueriesContext(connection) as queries:
        sub.phase.challenge.title, sub.participant_team.name, sub.created_by.username  # noqa: B018
    assert not queries.captured_queries  # every related row came with the query
    sub.method_name = "changed"
    sub.save(update_fields=["method_name"])
    assert Submission.objects.get(pk=sub.pk).method_name == "changed"


def test_init_receivers_are_sent_as_django_sends_them(submissions):
    """A model with a ``post_init`` receiver gets its instances from ``Model.__init__``, receiver called."""
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((sender, instance.pk))

    prepared = query()
    prepared.instances(after=0)  # the shortcut's first use
    post_init.connect(receiver, sender=Submission)
    try:
        found = prepared.instances(after=0)
    finally:
        post_init.disconnect(receiver, sender=Submission)
    assert seen == [(Submission, s.pk) for s in submissions]
    assert [state(obj) for obj in found] == [
        state(obj) for obj in Submission.objects.select_related(*RELATED).order_by("pk")
    ]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the rewrite is SQLite's")
def test_statements_skip_the_rewrite_but_not_the_recording(submissions, monkeypatch):
    monkeypatch.setattr(prepared_module, "_QMARK", {})  # as in a new process
    prepared = query()
    original = SQLiteCursorWrapper.convert_query
    with mock.patch.object(SQLiteCursorWrapper, "convert_query", autospec=True, side_effect=original) as rewrite:
        prepared.rows(after=0)  # the first run rewrites the statement, once
        prepared.rows(after=0)
    assert rewrite.call_count == 1
    with mock.patch.object(SQLiteCursorWrapper, "convert_query", side_effect=AssertionError("rewritten again")):
        assert [r[0] for r in prepared.rows(after=0)] == [s.pk for s in submissions]
        with CaptureQueriesContext(connection) as queries:  # recorded: Django's own path, rewrite included
            with pytest.raises(AssertionError, match="rewritten again"):
                prepared.rows(after=0)
    with CaptureQueriesContext(connection) as queries:
        assert len(prepared.rows(after=submissions[0].pk)) == 1
    assert len(queries.captured_queries) == 1
    wrapped = []

    def wrapper(execute, sql, params, many, context):
        wrapped.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        prepared.rows(after=0)
    assert wrapped == [prepared.sql]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the kept cursor is SQLite's")
def test_statements_run_on_a_kept_cursor_unless_recorded_or_shared(submissions):
    """``fetch`` and ``write`` make no cursor per statement; recorded statements, and a connection object
    shared between threads, take Django's cursor (recorded, one cursor per use)."""
    sql = f"UPDATE {Submission._meta.db_table} SET method_name = %s WHERE id = %s"
    wrapper = type(connections["default"])
    assert prepared_module.write(connection, sql, ["kept", submissions[0].pk]) == 1  # connected, cursor kept
    with mock.patch.object(wrapper, "cursor", side_effect=AssertionError("a new cursor")):
        assert prepared_module.write(connection, sql, ["again", submissions[0].pk]) == 1
        assert query().rows(after=0)[0][0] == submissions[0].pk
    assert Submission.objects.get(pk=submissions[0].pk).method_name == "again"
    with CaptureQueriesContext(connection) as queries:
        assert prepared_module.write(connection, sql, ["seen", 0]) == 0
        assert len(query().rows(after=0)) == 2
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE", "SELECT"]
    connection.inc_thread_sharing()
    try:
        with mock.patch.object(wrapper, "cursor", side_effect=AssertionError("a new cursor")):
            with pytest.raises(AssertionError, match="a new cursor"):
                prepared_module.write(connection, sql, ["shared", submissions[0].pk])
    finally:
        connection.dec_thread_sharing()


def test_datetimes_read_as_the_queryset_reads_them(submissions):
    """SQLite's datetime strings are read inline (``Prepared._run``): whole seconds, microseconds, NULL, and
    the same aware values as the queryset's."""
    import datetime as dt

    whole = dt.datetime(2026, 12, 3, 17, 0, 0, tzinfo=dt.UTC)
    Submission.objects.filter(pk=submissions[0].pk).update(started_at=whole, completed_at=None)
    Submission.objects.filter(pk=submissions[1].pk).update(
        started_at=whole + dt.timedelta(microseconds=123456), completed_at=whole + dt.timedelta(days=400)
    )
    names = ("pk", "submitted_at", "started_at", "completed_at", "output", "is_public")
    prepared = Prepared(Submission.objects.filter(pk__gt=MARK).order_by("pk").values_list(*names), after=MARK)
    expected = list(Submission.objects.order_by("pk").values_list(*names))
    found = prepared.rows(after=0)
    assert found == expected
    assert [[getattr(v, "tzinfo", None) for v in row] for row in found] == [
        [getattr(v, "tzinfo", None) for v in row] for row in expected
    ]
    assert found[0][2] == whole and found[0][3] is None and found[1][2].microsecond == 123456
