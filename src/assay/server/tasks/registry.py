"""Handlers by name. Plain Python: higher apps register theirs in ``AppConfig.ready``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Handler = Callable[[dict], None]


@dataclass(frozen=True)
class Registered:
    function: Handler
    lease_seconds: float | None  # how long one run may take before another runner may take it over


_handlers: dict[str, Registered] = {}


def handler(name: str, *, lease_seconds: float | None = None) -> Callable[[Handler], Handler]:
    """Register ``function(payload)`` as the handler of tasks named ``name``.

    A handler returns to succeed, raises :class:`Permanent` to fail at once (retrying cannot help), raises
    anything else to be retried with backoff. It may run more than once for one task (a runner that dies
    mid-run), so it should be safe to repeat."""

    def register(function: Handler) -> Handler:
        known = _handlers.get(name)
        if known is not None and known.function is not function:
            raise ValueError(f"a task handler named {name!r} is already registered ({known.function.__qualname__})")
        _handlers[name] = Registered(function, lease_seconds)
        return function

    return register


def lookup(name: str) -> Registered | None:
    return _handlers.get(name)


class Permanent(Exception):
    """Raised by a handler: this task cannot succeed (its object is gone, its target refuses for good)."""
