"""Who may see which challenge in listings, and when a phase-split's results become public.

These are facts about a challenge's own settings, read by submissions (whose results a reader may see)
and leaderboards (who may read a ranking) alike; so they live here, below both.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ..models import Challenge, ChallengePhaseSplit

LISTED = Q(published=True, approved_by_admin=True, is_disabled=False)


def challenge_listed(challenge: Challenge) -> bool:
    """Published, approved and enabled: what everyone may see (the same rule as :data:`LISTED`)."""
    return challenge.published and challenge.approved_by_admin and not challenge.is_disabled


def effective_visibility(ps: ChallengePhaseSplit, now: dt.datetime | None = None) -> int:
    """The visibility participants get at ``now``: the configured one, public after ``reveal_at``."""
    now = now or timezone.now()
    public = ChallengePhaseSplit.Visibility.PUBLIC
    return int(public if ps.reveal_at is not None and ps.reveal_at <= now else ps.visibility)


def phases_seen(challenge: Challenge, host: bool) -> QuerySet:
    """The phases a reader knows of: a host (``roles.is_host``) every one, everyone else the public ones."""
    phases = challenge.phases.all()
    return phases if host else phases.filter(is_public=True)


def phase_seen(phase, host: bool) -> bool:
    """:func:`phases_seen` for one phase."""
    return host or phase.is_public


def phase_splits_seen(challenge: Challenge, host: bool, now: dt.datetime | None = None) -> list[ChallengePhaseSplit]:
    """The phase-splits a reader knows of: a host all; everyone else the public ones (by
    :func:`effective_visibility`, so a ``reveal_at`` that has passed counts) of public phases, as EvalAI."""
    rows = ChallengePhaseSplit.objects.filter(phase__challenge=challenge).select_related(
        "phase", "dataset_split", "leaderboard"
    )
    if host:
        return list(rows)
    now = now or timezone.now()
    public = ChallengePhaseSplit.Visibility.PUBLIC
    return [ps for ps in rows.filter(phase__is_public=True) if effective_visibility(ps, now) == public]


def visible_challenges(user) -> QuerySet[Challenge]:
    """Published, approved, enabled challenges for everyone; plus a host's own; all for staff."""
    qs = Challenge.objects.select_related("host_team").annotate(phase_count=Count("phases"))
    if getattr(user, "is_staff", False):
        return qs
    if getattr(user, "is_authenticated", False):
        return qs.filter(LISTED | Q(host_team__members=user)).distinct()
    return qs.filter(LISTED)
