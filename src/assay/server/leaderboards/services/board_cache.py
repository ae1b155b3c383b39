"""Leaderboard responses kept whole per audience (:mod:`assay.server.read_cache`).

A page shows the same bytes to every reader :func:`~.visibility.access_for` puts in the same place:
its ``Access`` (level, visibility now, the reader's team, public rows only) is the audience. So hosts and
staff share entries, anonymous readers and signed-in readers without a team in the challenge share
entries, and each team has its own (its row is marked, its own block differs); nobody reads an entry
made for an audience that may see more.

The key's versions are the challenge's (``read_versions.board``: settings, splits, registrations,
and from here results, entries and submissions' marks) and the people's (team names, memberships).
On a hit the phase-split row and the reader's access come from in-process memos valid for those
versions, so a cached page costs the version read, the body read and no query of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection
from django.db.models import Min
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.challenges.services.listing import effective_visibility
from assay.server.challenges.services.read_versions import PEOPLE, board, challenge_of_phase, challenge_of_split
from assay.server.prepared import Prepared
from assay.server.read_cache import Memo, body_key, bump, cached_body, seconds_until, versions
from assay.server.submissions import signals as submissions
from assay.server.submissions.models import Submission

from ..models import LeaderboardEntry
from .errors import LeaderboardError
from .ranking import MAX_ID, load_phase_split
from .visibility import Access, access_for

_splits: Memo[ChallengePhaseSplit] = Memo()
_access: Memo[Access] = Memo()


def page_body(
    user, phase_split_id: int, entries: str | None, query: tuple, build: Callable[[ChallengePhaseSplit, Access], bytes]
) -> bytes:
    """The body of a leaderboard response for ``user``: cached per (versions, audience, ``query``), else
    ``build(ps, access)`` (which must read the page the same way: it runs only on a miss), given the
    phase-split and the reader's access just read here, for ``ranking.leaderboard(access=…)`` not to read
    them again. Refusals are raised here, by the access rule, before any entry is read."""
    if not 0 < phase_split_id <= MAX_ID:
        raise LeaderboardError("not_found", "no such leaderboard", 404)
    challenge_id = challenge_of_split(phase_split_id)
    if challenge_id is None:
        raise LeaderboardError("not_found", "no such leaderboard", 404)
    tokens = versions(PEOPLE, board(challenge_id))  # before any row is read (read_cache says why)
    ps = _splits.get(phase_split_id, tokens)
    if ps is None:
        ps = load_phase_split(phase_split_id)
        _splits.put(phase_split_id, tokens, ps)
    access = audience(user, ps, entries, tokens)
    key = body_key("board", phase_split_id, tokens, access, query)
    return cached_body(key, lambda: build(ps, access), lambda: seconds_to_next_reveal(ps))


_PHASE_MARK, _NOW_MARK = -301, dt.datetime(1901, 1, 1, tzinfo=dt.UTC)  # stand-ins the query is compiled with
_REVEALS: dict[str, Prepared] = {}


def seconds_to_next_reveal(ps: ChallengePhaseSplit, now: dt.datetime | None = None) -> float:
    """How long a page may be kept: until the next reveal date of a split of its phase. The page's own
    visibility is in its audience, but its overall column draws on the phase's other splits and is
    hidden from readers who cannot see one of them yet. Asked by every page built: compiled once."""
    now = now or timezone.now()
    query = _REVEALS.get(connection.alias)
    if query is None:
        later = ChallengePhaseSplit.objects.filter(phase_id=_PHASE_MARK, reveal_at__gt=_NOW_MARK).order_by()
        qs = later.values("phase_id").annotate(at=Min("reveal_at")).values_list("at")
        adapted = connection.ops.adapt_datetimefield_value(_NOW_MARK)
        query = _REVEALS[connection.alias] = Prepared(qs, phase=_PHASE_MARK, now=adapted)
    found = query.rows(phase=ps.phase_id, now=connection.ops.adapt_datetimefield_value(now))
    return seconds_until(now, found[0][0] if found else None)


def audience(user, ps: ChallengePhaseSplit, entries: str | None, tokens: tuple[str, ...]) -> Access:
    """``access_for(user, ps, entries)``, remembered per reader while the versions hold (a signed-in
    reader's host and team look-ups are two queries); the reveal date is applied at each call."""
    if not getattr(user, "is_authenticated", False):
        return access_for(user, ps, entries)
    memo_key = (user.pk, user.is_staff, ps.pk, entries, effective_visibility(ps))
    found = _access.get(memo_key, tokens)
    if found is None:
        found = access_for(user, ps, entries)
        _access.put(memo_key, tokens, found)
    return found


def _submission_changed(sender, instance: Submission, created: bool = False, **kwargs) -> None:
    if created or instance.status in Submission.IN_PROGRESS:
        return  # not on any leaderboard (yet)
    _bump_phase(instance.phase_id)


def _submission_gone(sender, instance: Submission, **kwargs) -> None:
    _bump_phase(instance.phase_id)


def _announced(sender, *, submission: Submission, **kwargs) -> None:
    _bump_phase(submission.phase_id)


def _entry(sender, instance: LeaderboardEntry, **kwargs) -> None:
    challenge_id = challenge_of_split(instance.phase_split_id)
    if challenge_id is not None:
        bump(board(challenge_id))


def _bump_phase(phase_id: int) -> None:
    challenge_id = challenge_of_phase(phase_id)
    if challenge_id is not None:
        bump(board(challenge_id))


def connect() -> None:
    """Called from ``leaderboards/apps.py``: results, marks and entries change the challenge's boards."""
    post_save.connect(_submission_changed, sender=Submission, dispatch_uid="board-cache-submission-save")
    post_delete.connect(_submission_gone, sender=Submission, dispatch_uid="board-cache-submission-delete")
    post_save.connect(_entry, sender=LeaderboardEntry, dispatch_uid="board-cache-entry-save")
    post_delete.connect(_entry, sender=LeaderboardEntry, dispatch_uid="board-cache-entry-delete")
    submissions.scored.connect(_announced, dispatch_uid="board-cache-scored")
    submissions.changed.connect(_announced, dispatch_uid="board-cache-changed")
