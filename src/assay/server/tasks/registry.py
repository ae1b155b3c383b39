"""Handlers by name. Plain Python: higher apps register theirs in ``AppConfig.ready``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Handler = Callable[[dict], None]
#: A batch handler: the payloads of several tasks of its name, and for each (same order) None when it succeeded or
#: the exception it failed with (:class:`Permanent`: at once; anything else: retried with backoff).
BatchHandler = Callable[[list[dict]], list[BaseException | None]]


@dataclass(frozen=True)
class Registered:
    function: Callable
    lease_seconds: float | None  # how long one run may take before another runner may take it over
    batch: bool = False  # function takes a list of payloads and answers an outcome for each


def handler(name: str, *, lease_seconds: float | None = None, batch: bool = False) -> Callable[[Callable], Callable]:
    """Register ``function(payload)`` as the handler of tasks named ``name``.

    A handler returns to succeed, raises :class:`Permanent` to fail at once (retrying cannot help), raises
    anything else to be retried with backoff. It may run more than once for one task (a runner that dies
    mid-run), so it should be safe to repeat.

    With ``batch``, ``function(payloads)`` gets the payloads of the due tasks of this name the runner took
    together (up to a read's batch, in their order; one when run alone) and returns one outcome per payload
    (:data:`BatchHandler`): each task is then done, retried or failed on its own, so a batch handler shares
    its reads and connections between tasks, never their outcomes. If it raises, every task of the batch is
    retried (or failed, for :class:`Permanent`)."""

    def register(function: Callable) -> Callable:
        known = _handlers.get(name)
        if known is not None and known.function is not function:
            raise ValueError(f"a task handler named {name!r} is already registered ({known.function.__qualname__})")
        _handlers[name] = Registered(function, lease_seconds, batch)
        return function

    return register


_handlers: dict[str, Registered] = {}


def lookup(name: str) -> Registered | None:
    return _handlers.get(name)


class Permanent(Exception):
    """Raised by a handler: this task cannot succeed (its object is gone, its target refuses for good)."""
