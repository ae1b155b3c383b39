"""Challenge-list responses kept whole per audience (:mod:`assay.server.read_cache`).

:func:`~.listing.visible_challenges` shows the listed challenges to everyone, plus a host's own and
everything to staff; so anonymous readers and signed-in readers who host nothing share entries, staff
share theirs, and a host (or anyone asking for ``?role=``, a list of their own) has entries of their own.
The versions are the list's (challenge settings, phases, registrations) and the people's (team names,
memberships, staff flags). A list also changes with time alone (``is_active``, ``?status=``), so an entry
is kept only until the next start or end date of any challenge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db.models import Min, Q
from django.utils import timezone

from assay.server.read_cache import Memo, body_key, cached_body, seconds_until, versions
from assay.server.teams.models import HostTeamMember

from ..models import Challenge
from .read_versions import LIST, PEOPLE

_hosts: Memo[bool] = Memo()


def list_body(user, role: str | None, query: tuple, build: Callable[[], bytes]) -> bytes:
    """The body of a challenge-list response for ``user``: cached per (versions, audience, ``query``), else
    ``build()``'s (run only on a miss)."""
    tokens = versions(LIST, PEOPLE)  # before any row is read (read_cache says why)
    key = body_key("challenges", tokens, audience(user, role, tokens), query)
    return cached_body(key, build, seconds_to_next_date)


def audience(user, role: str | None, tokens: tuple[str, ...]) -> str:
    """Who sees the same list as ``user`` (see the module's docstring)."""
    if not getattr(user, "is_authenticated", False):
        return "public"  # ?role= gives an anonymous reader an empty list, the same for all of them
    if user.is_staff:
        return "staff" if not role else f"user:{user.pk}"
    if role:
        return f"user:{user.pk}"
    hosts = _hosts.get(user.pk, tokens)
    if hosts is None:
        hosts = HostTeamMember.objects.filter(user=user).exists()
        _hosts.put(user.pk, tokens, hosts)
    return f"user:{user.pk}" if hosts else "public"


def seconds_to_next_date(now: dt.datetime | None = None) -> float:
    """Seconds until the next start or end of any challenge (at most the cache's bound)."""
    now = now or timezone.now()
    found = Challenge.objects.aggregate(
        start=Min("start_date", filter=Q(start_date__gt=now)), end=Min("end_date", filter=Q(end_date__gte=now))
    )
    return seconds_until(now, *found.values())
