"""The database cache's table, made whenever ``migrate`` runs (so ``make demo`` and tests need no extra step).

Throttle counts live in the cache (see settings ``CACHES``); with the database backend it needs a table
that no migration owns, since the backend is a setting: an operator may switch from Redis to the
database at any time, and the next ``migrate`` makes the table. With Redis this does nothing.
"""

from __future__ import annotations

from django.core.management import call_command


def create_cache_table(sender, using: str = "default", verbosity: int = 1, **kwargs) -> None:
    call_command("createcachetable", database=using, verbosity=max(0, verbosity - 1))
