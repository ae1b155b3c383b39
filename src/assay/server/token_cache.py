"""A short-lived in-process cache of token rows by digest, so a request authenticates with no query.

Issue 13 measured token authentication at ~8 % of the server's CPU for trivial submissions: one query
per request of every worker and API client. A row found usable is kept for ``ASSAY_TOKEN_CACHE_SECONDS``
(default 5; 0 turns the cache off). Revocation takes effect at once in the process that revokes (every
save or delete of a token or user, and every bulk revocation, empties the cache) and within that many
seconds in the other processes of a multi-process server, whose caches cannot hear of it.

Each caller gets its own copy of the row (and of its user), so one request's changes to
``request.auth`` or ``request.user`` never reach another's.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Generic, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Model

M = TypeVar("M", bound=Model)
MAX_ENTRIES = 10_000  # a bound on memory; past it the cache starts over


def ttl() -> float:
    return settings.TOKEN_CACHE_SECONDS


class TokenCache(Generic[M]):
    """Rows by token digest, each for :func:`ttl` seconds; ``related``: a cached relation copied with it."""

    def __init__(self, related: str | None = None) -> None:
        self.related = related
        self._rows: dict[str, tuple[float, M]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> M | None:
        """A private copy of the row cached for ``digest``, or None (never cached, or too old)."""
        with self._lock:
            hit = self._rows.get(digest)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return self._copy(hit[1])

    def put(self, digest: str, row: M) -> None:
        if ttl() <= 0:
            return
        with self._lock:
            if len(self._rows) >= MAX_ENTRIES:
                self._rows.clear()
            self._rows[digest] = (time.monotonic() + ttl(), self._copy(row))

    def touched(self, digest: str, field: str, value) -> None:
        """Record a field the caller just wrote (``last_used_at``), so the next hit does not write it again."""
        with self._lock:
            hit = self._rows.get(digest)
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
            self._rows.clear()

    def _copy(self, row: M) -> M:
        mine = copy.copy(row)
        if self.related is not None:
            setattr(mine, self.related, copy.copy(getattr(row, self.related)))
        return mine
