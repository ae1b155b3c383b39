"""A cached body is written without waiting for the disk (``read_cache.store(..., durable=False)``): on
PostgreSQL, outside a transaction, its upsert alone commits with ``synchronous_commit`` off (a body lost in
a crash is only built again); the session's own setting, every version token and every write inside a
transaction keep the server's. What is stored is the same either way."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assay.server import read_cache

pytestmark = pytest.mark.django_db(transaction=True)


def _upserts(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]


def test_a_body_outside_a_transaction_is_stored_without_a_flush_and_reads_back():
    values = {"assay:rc:b:test-1": b'{"rows": [1, 2]}', "assay:rc:b:test-2": {"a": "b"}}
    with CaptureQueriesContext(connection) as queries:
        read_cache.store(values, 60, durable=False)
    assert cache.get_many(list(values)) == values
    (sql,) = _upserts(queries)
    assert ("set_config('synchronous_commit', 'off', true)" in sql) == (connection.vendor == "postgresql")
    read_cache.store({"assay:rc:b:test-1": b"again"}, 60, durable=False)  # the upsert replaces a body
    assert cache.get("assay:rc:b:test-1") == b"again"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # local to that statement's transaction: the session keeps its own
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


def test_tokens_and_writes_inside_a_transaction_keep_the_servers_durability():
    with CaptureQueriesContext(connection) as queries:
        read_cache.store({"assay:rc:v:test": "token"}, None)  # durable: the default
        with transaction.atomic():
            read_cache.store({"assay:rc:b:test-3": b"body"}, 60, durable=False)
    assert cache.get("assay:rc:v:test") == "token" and cache.get("assay:rc:b:test-3") == b"body"
    assert len(_upserts(queries)) == 2
    assert not any("synchronous_commit" in sql for sql in _upserts(queries))


def test_a_page_body_is_kept_without_a_flush(monkeypatch):
    seen = []
    monkeypatch.setattr(read_cache, "store", lambda values, timeout, **kw: seen.append(kw))
    monkeypatch.setattr(read_cache, "_writes", iter([1]))  # not the culling write
    read_cache._keep("assay:rc:b:test-4", b"body", 30)
    assert seen == [{"durable": False}]
