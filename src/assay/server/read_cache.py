"""Whole responses of the hot read endpoints (a leaderboard page, the challenge list), kept in the shared
cache (Django's, as configured: the database, or Redis with ``ASSAY_CACHE_URL``) under version keys.

Issue 13 measured these endpoints at 8–23 ms of CPU per request, nearly all of it ORM and serialization,
for data that changes when a result is scored or a host edits, not per read. So a response is stored
under a key made of *versions* — one token per thing it shows (a challenge's leaderboards, the challenge
list, the people: teams, memberships, accounts) — plus the reader's *audience* and the query. A write
that changes what an endpoint shows replaces the version token (:func:`bump`, from signal receivers), so
every older entry is never read again and ages out; nothing is deleted by pattern, which the database
cache cannot do.

The version is read before the data a response is built from, and replaced no earlier than the write
becomes visible: a response built from data read before the commit is stored under a token that the
commit has already replaced. With the database cache (the default) the new token is written by one
statement inside the writer's own transaction, so it commits, or rolls back, with the data it announces;
with another cache (Redis) it is written at once and again when the transaction commits.
``ASSAY_READ_CACHE_SECONDS`` bounds an entry's life (0 turns the cache off); an evicted version token
only costs misses.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import pickle
import threading
import uuid
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction

PREFIX = "assay:rc:"
V = TypeVar("V")


def seconds() -> float:
    return settings.READ_CACHE_SECONDS


def versions(*names: str) -> tuple[str, ...]:
    """The current token of each version name (a missing one is created)."""
    keys = [PREFIX + "v:" + n for n in names]
    found = cache.get_many(keys)
    for key in keys:
        if key not in found:
            cache.add(key, uuid.uuid4().hex, None)
            found[key] = cache.get(key) or uuid.uuid4().hex  # evicted at once: a token nobody else holds
    return tuple(found[k] for k in keys)


def bump(*names: str) -> None:
    """Replace the tokens of ``names``: with the database cache in one statement, inside the writer's
    transaction when one is open (it commits with the data); with another cache now and again when the
    transaction commits (a reader between the two may store what it read before the commit)."""

    def replace() -> None:
        cache.set_many({PREFIX + "v:" + n: uuid.uuid4().hex for n in names}, None)

    if _database_alias() == transaction.get_connection().alias:
        store({PREFIX + "v:" + n: uuid.uuid4().hex for n in names}, None)
        return
    replace()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(replace)


def _database_alias() -> str | None:
    """The database the shared cache lives in, or None when it is not the database cache."""
    backend = caches["default"]  # ``cache`` is a proxy to it: no isinstance through that
    return router.db_for_write(backend.cache_model_class) if isinstance(backend, DatabaseCache) else None


def store(values: dict[str, object], timeout: float | None, *, durable: bool = True) -> None:
    """``cache.set_many(values, timeout)``, with the database cache as one upsert statement.

    Django's database cache spends four or five statements per key (a count for culling, a savepoint, a
    read, the write); the hot paths' writes (version tokens, the submit throttle's history, and all but
    one in :data:`CULL_EVERY` of the cached bodies) skip the cull, which that one body write still runs.

    ``durable=False`` (a cached body: lost in a crash, it is only built again) lets PostgreSQL commit the
    upsert without waiting for its WAL to reach the disk (``synchronous_commit`` off for that statement's
    own transaction; visible to every reader at once all the same): the flush was 6–7 ms of the wall
    clock of every page built (p95 12–16 ms) for 0.2 ms without it. Inside a transaction the write
    commits with it, as durable as the rest."""
    alias = _database_alias()
    if alias is None or not values:
        cache.set_many(values, timeout)
        return
    db, backend = connections[alias], caches["default"]
    if timeout is None:
        expires = dt.datetime.max.replace(microsecond=0)  # as DatabaseCache writes "never"
    else:
        expires = dt.datetime.fromtimestamp(int(backend.get_backend_timeout(timeout)), tz=dt.UTC)
        expires = expires if settings.USE_TZ else expires.replace(tzinfo=None)
    expires = db.ops.adapt_datetimefield_value(expires)
    rows: list[object] = []
    for key in sorted(values):  # one order for every writer: concurrent upserts on PostgreSQL cannot deadlock
        encoded = base64.b64encode(pickle.dumps(values[key], backend.pickle_protocol)).decode("latin1")
        rows += [backend.make_and_validate_key(key), encoded, expires]
    q = db.ops.quote_name
    table, key_col, value_col, expires_col = q(backend._table), q("cache_key"), q("value"), q("expires")
    placeholders = ", ".join(["(%s, %s, %s)"] * len(values))
    source = f"VALUES {placeholders}"
    if not durable and db.vendor == "postgresql" and db.get_autocommit() and not db.in_atomic_block:
        # one statement, so its own transaction: the setting is local to it (set_config(…, true))
        source = (
            f"SELECT v.* FROM ({source}) AS v CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS s"
        )
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key_col}, {value_col}, {expires_col}) {source} "
            f"ON CONFLICT ({key_col}) DO UPDATE SET {value_col} = EXCLUDED.{value_col}, "
            f"{expires_col} = EXCLUDED.{expires_col}",
            rows,
        )


def body_key(*parts: object) -> str:
    """A cache key for a response: a digest of its versions, audience and normalised query."""
    return PREFIX + "b:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def cached_body(key: str, build: Callable[[], bytes], ttl: Callable[[], float] = seconds) -> bytes:
    """The body stored under ``key``, or ``build()``'s, stored for ``ttl()`` seconds (at most :func:`seconds`).

    ``ttl`` is asked before ``build`` reads anything: a date it names that passes meanwhile still ends
    the entry's life."""
    if seconds() <= 0:
        return build()
    body = cache.get(key)
    if body is None:
        keep = min(ttl(), seconds())
        body = build()
        if keep >= 1:
            _keep(key, body, keep)
    return body


CULL_EVERY = 64  # of the database cache's body writes, one goes through Django's set(): counts and culls
_writes = itertools.count()


def _keep(key: str, body: object, keep: float) -> None:
    """Store a body. With the database cache by :func:`store` (one statement: Django's ``set`` runs five, a
    count of the whole table among them, on every page built after a result), except every
    :data:`CULL_EVERY`-th, which goes through ``set`` and so still culls a full table (at most that many
    writes per process past ``MAX_ENTRIES``)."""
    if _database_alias() is not None and next(_writes) % CULL_EVERY:
        store({key: body}, keep, durable=False)
    else:
        cache.set(key, body, keep)


def seconds_until(now: dt.datetime, *dates: dt.datetime | None) -> float:
    """How long an entry may live when what it shows changes by itself at ``dates`` (no write announces
    a date passing: a challenge opening, a split's reveal): until the first, at most :func:`seconds`."""
    return min([seconds(), *((d - now).total_seconds() for d in dates if d is not None)])


class Memo(Generic[V]):
    """In-process values that are valid for one set of version tokens (a phase-split row, a reader's
    access): correct across processes because the tokens come from the shared cache on each request."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._values: dict[Hashable, tuple[tuple[str, ...], V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, tokens: tuple[str, ...]) -> V | None:
        hit = self._values.get(key)
        return hit[1] if hit is not None and hit[0] == tokens else None

    def put(self, key: Hashable, tokens: tuple[str, ...], value: V) -> None:
        with self._lock:
            if len(self._values) >= self.MAX_ENTRIES:
                self._values.clear()
            self._values[key] = (tokens, value)
