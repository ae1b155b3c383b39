"""Short-lived in-process caches of rows the hot paths read on every request (tokens, submit's phase).

Issue 13 measured token authentication at ~8 % of the server's CPU for trivial submissions, and the
ORM's Python at most of the rest: one query per request of every worker and API client, and one for
the phase each submission names. A row is kept for a few seconds (``ASSAY_TOKEN_CACHE_SECONDS``,
``ASSAY_PHASE_CACHE_SECONDS``; 0 turns a cache off). A change takes effect at once in the process that
makes it (saves and deletes send signals that empty the cache; the few bulk updates empty it
themselves) and within that many seconds in the other processes of a multi-process server, whose
caches cannot hear of it.

A row read from the database while a change clears the cache may be the old one: callers take a
:meth:`RowCache.stamp` before reading and :meth:`RowCache.put` keeps the row only if no clear came in
between, so a revocation that lands mid-lookup is not outlived by the row that lookup read.

Each caller gets its own copy of the row (and of its cached relations), so one request's changes to
``request.auth``, ``request.user`` or a phase never reach another's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.db import transaction
from django.db.models import Model

M = TypeVar("M")  # a model row, or an immutable value built from rows
MAX_ENTRIES = 10_000  # a bound on memory; past it the cache starts over


class RowCache(Generic[M]):
    """Rows by key, each for ``seconds()`` (a setting, read at each put); ``related``: cached relations
    copied with the row, as dotted paths (``"challenge"``, ``"challenge.host_team"``), parents first."""

    def __init__(self, seconds: Callable[[], float], related: tuple[str, ...] = ()) -> None:
        self.seconds = seconds
        self.related = related
        self._rows: dict[Hashable, tuple[float, M]] = {}
        self._lock = threading.Lock()
        self._clears = 0  # how many times the cache was emptied: see stamp()

    def get(self, key: Hashable) -> M | None:
        """A private copy of the row cached for ``key``, or None (never cached, or too old)."""
        with self._lock:
            hit = self._rows.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return self._copy(hit[1])

    def stamp(self) -> int:
        """Taken before reading a row from the database, and given to :meth:`put` with it."""
        return self._clears

    def put(self, key: Hashable, row: M, stamp: int) -> None:
        """Keep ``row`` unless the cache was emptied since ``stamp`` (it may predate that change)."""
        seconds = self.seconds()
        if seconds <= 0:
            return
        with self._lock:
            if stamp != self._clears:
                return
            if len(self._rows) >= MAX_ENTRIES:
                self._rows.clear()
            self._rows[key] = (time.monotonic() + seconds, self._copy(row))

    def touched(self, key: Hashable, field: str, value) -> None:
        """Record a field the caller just wrote (``last_used_at``), so the next hit does not write it again."""
        with self._lock:
            hit = self._rows.get(key)
            if hit is not None:
                setattr(hit[1], field, value)

    def clear(self, *args, **kwargs) -> None:
        """Forget every row (a revocation, or any change to a token or user); a signal receiver as is.

        Again when the change commits: a row read meanwhile by another thread (still the old one) is
        not kept past it."""
        self._clear()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(self._clear)

    def _clear(self) -> None:
        with self._lock:
            self._clears += 1
            self._rows.clear()

    def _copy(self, row: M) -> M:
        if not isinstance(row, Model):  # an immutable value built from rows: nothing to keep apart
            return row
        mine = _model_copy(row)
        for path in self.related:
            *parents, name = path.split(".")
            owner = mine
            for parent in parents:
                owner = getattr(owner, parent)
            cache = owner._state.fields_cache
            if name in cache:  # a forward relation's cached row (loaded with select_related)
                cache[name] = _model_copy(cache[name]) if cache[name] is not None else None
            else:
                setattr(owner, name, _model_copy(getattr(owner, name)))
        return mine


def _model_copy(row: Model) -> Model:
    """What ``copy.copy`` gives of a model instance (its fields, and its state with its own relation cache),
    without the pickling protocol ``copy.copy`` goes through: every hit of every cache copies a row or three,
    and that protocol was most of a hit's cost."""
    mine = object.__new__(type(row))
    fields = row.__dict__.copy()
    state = object.__new__(type(row._state))
    state.__dict__.update(row._state.__dict__)
    if "fields_cache" in state.__dict__:
        state.fields_cache = state.fields_cache.copy()
    fields["_state"] = state
    mine.__dict__.update(fields)
    return mine
