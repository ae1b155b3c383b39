"""Whole responses of the hot read endpoints (a leaderboard page, the challenge list), kept in the shared
cache (Django's, as configured: the database, or Redis with ``ASSAY_CACHE_URL``) under version keys.

Issue 13 measured these endpoints at 8–23 ms of CPU per request, nearly all of it ORM and serialization,
for data that changes when a result is scored or a host edits, not per read. So a response is stored
under a key made of *versions* — one token per thing it shows (a challenge's leaderboards, the challenge
list, the people: teams, memberships, accounts) — plus the reader's *audience* and the query. A write
that changes what an endpoint shows replaces the version token (:func:`bump`, from signal receivers), so
every older entry is never read again and ages out; nothing is deleted by pattern, which the database
cache cannot do.

The version is read before the data a response is built from, and bumped again when the writing
transaction commits: a response built from data read before the commit is stored under a token that
the commit has already replaced. ``ASSAY_READ_CACHE_SECONDS`` bounds an entry's life (0 turns the cache
off); an evicted version token only costs misses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

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
    """Replace the tokens of ``names`` now and, inside a transaction, again when it commits."""

    def replace() -> None:
        cache.set_many({PREFIX + "v:" + n: uuid.uuid4().hex for n in names}, None)

    replace()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(replace)


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
            cache.set(key, body, keep)
    return body


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
