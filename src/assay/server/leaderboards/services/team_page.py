"""A participant team's public page: its name, its members' display names, the challenges it takes part in
that the reader may see, and its rows on the public leaderboards of those challenges.

Nothing here decides visibility anew: challenges come from ``challenges.services.listing`` (what the reader
may see), phase-splits from :func:`~assay.server.challenges.services.listing.phase_splits_seen` as a
non-host reads them (public phases, visibility 3 or revealed), each confirmed by
:func:`.visibility.access_for` for the reader, and rows from the standings of public submissions only
(:func:`.ranking.visible_standings` with ``public_only``), so a private entry or a hidden split never shows —
not even to the team's hosts or members, who have their own pages for those. No e-mail address shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q

from assay.server.challenges.models import Challenge, ChallengePhaseSplit, Participation
from assay.server.challenges.services.listing import challenge_listed, phase_splits_seen, visible_challenges
from assay.server.teams.models import ParticipantTeam

from .errors import LeaderboardError
from .ranking import _live, banned_team_ids, fmt, visible_standings
from .standings import ensure_current
from .visibility import access_for

PUBLIC = ChallengePhaseSplit.Visibility.PUBLIC


@dataclass(frozen=True)
class TeamEntry:
    """The team's standing on one public leaderboard, on the leaderboard's default sort label."""

    phase_split: ChallengePhaseSplit
    label: str
    value: str | None  # None when the leaderboard hides scores
    rank: int
    teams: int
    method_name: str
    submitted_at: object


@dataclass
class TeamPage:
    team: ParticipantTeam
    members: list[str]
    challenges: list[Challenge]
    entries: dict[int, list[TeamEntry]] = field(default_factory=dict)  # challenge id -> its rows


def display_name(user) -> str:
    """The name a stranger may read: the full name, else the username without anything after an '@'."""
    full = (user.get_full_name() or "").strip()
    return full or user.get_username().split("@", 1)[0]


def team_page(user, team: ParticipantTeam) -> TeamPage:
    """What ``user`` (anyone, signed in or not) may read of ``team``."""
    members = [display_name(m.user) for m in team.memberships.select_related("user").order_by("joined_at", "id")]
    challenges = list(
        visible_challenges(user)
        .filter(participations__team=team, participations__status=Participation.Status.APPROVED)
        .order_by("-start_date", "id")
    )
    page = TeamPage(team, members, challenges)
    for challenge in challenges:
        if not challenge_listed(challenge):
            continue  # a host's unlisted challenge: its leaderboards are public to nobody yet
        banned = banned_team_ids(challenge)
        if team.pk in banned:
            continue  # the leaderboards leave a banned team out; so does its page
        rows = [e for ps in phase_splits_seen(challenge, host=False) if (e := _entry(user, ps, team, banned))]
        if rows:
            page.entries[challenge.pk] = rows
    return page


def _entry(user, ps: ChallengePhaseSplit, team: ParticipantTeam, banned: list[int]) -> TeamEntry | None:
    try:
        access = access_for(user, ps)
    except LeaderboardError:
        return None
    if access.visibility != PUBLIC:
        return None
    rules = ensure_current(ps)
    label = rules.default_order_by
    board = visible_standings(rules, label, True, banned)
    mine = _live(rules, True, board.filter(team_id=team.pk, is_baseline=False))
    if not mine:
        return None
    row = mine[0]
    counts = board.filter(is_baseline=False).aggregate(
        ahead=Count("id", filter=Q(sort_key__lt=row["sort_key"])), teams=Count("id")
    )
    value = None
    if ps.show_scores_on_leaderboard:
        raw = (row["entry__result"] or {}).get(label)
        value = fmt(raw if isinstance(raw, int | float) else None, ps.leaderboard_decimal_precision)
    return TeamEntry(
        phase_split=ps,
        label=label,
        value=value,
        rank=counts["ahead"] + 1,
        teams=counts["teams"],
        method_name=row["submission__method_name"] or "",
        submitted_at=row["submission__submitted_at"],
    )
