"""Scores over time, for a chart: each team's best so far, and the leaderboard's top score so far.

The database finds the *improvements* — entries that beat everything their team had submitted before
(a running minimum of the sort key per team, by submission time) — so only those points, typically a
handful per team, reach Python, where the leaderboard's top line is the running best over them.
The same entries count as on the leaderboard (same audience, same exclusions); baselines are not
competitors and have no line. ``show_leaderboard_by_latest_submission`` does not change a best-so-far line.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Min, Value, Window
from django.db.models.expressions import RowRange
from django.db.models.functions import Coalesce

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.teams.models import ParticipantTeam

from .errors import LeaderboardError
from .ranking import MAX_ID, ORDER, banned_team_ids, load_phase_split, visible_standings
from .standings import INF, eligible_entries, ensure_current, sort_key_of, value_of
from .visibility import access_for

MAX_TEAMS = 50


def history(
    user,
    ps: ChallengePhaseSplit | int,
    *,
    label: str | None = None,
    team_ids: list[int] | None = None,
    top: int = 10,
    entries: str | None = None,
) -> dict[str, Any]:
    """Best-so-far lines of ``team_ids`` (default: the current top ``top`` teams) and the top line."""
    ps = load_phase_split(ps)
    access = access_for(user, ps, entries)
    if not ps.show_scores_on_leaderboard and not access.is_host:
        raise LeaderboardError("scores_hidden", "this leaderboard does not show scores", 403)
    rules = ensure_current(ps)
    label = label or rules.default_order_by
    if label not in rules.labels:
        raise LeaderboardError("bad_label", f"{label!r} is not a label of this leaderboard {list(rules.labels)}", 400)
    ascending = rules.ascending[label]
    banned = banned_team_ids(ps.phase.challenge)

    qs = eligible_entries(rules, access.public_only).filter(submission__is_baseline=False)
    if banned:
        qs = qs.exclude(participant_team_id__in=banned)
    if access.level == "own":
        qs = qs.filter(participant_team_id=access.team_id)
        team_ids = [access.team_id]
    improvements = (
        qs.annotate(key=sort_key_of(label, ascending), value=value_of(label), at=F("submission__submitted_at"))
        .annotate(
            before=Coalesce(
                Window(
                    Min("key"),
                    partition_by=[F("participant_team_id")],
                    order_by=[F("at").asc(), F("id").asc()],
                    frame=RowRange(start=None, end=-1),
                ),
                Value(INF),
            )
        )
        .filter(key__lt=F("before"))
        .values_list("participant_team_id", "submission_id", "at", "value", "key")
    )
    points = sorted(improvements, key=lambda p: (p[2], p[1]))

    if team_ids is None:
        top = min(max(int(top), 0), MAX_TEAMS)
        shown = visible_standings(rules, label, access.public_only, banned).filter(is_baseline=False)
        team_ids = list(shown.order_by(*ORDER).values_list("team_id", flat=True)[:top])
    team_ids = [t for t in dict.fromkeys(team_ids) if 0 < t <= MAX_ID][:MAX_TEAMS]
    wanted = {p[0] for p in points} | set(team_ids)
    names = dict(ParticipantTeam.objects.filter(pk__in=wanted).values_list("pk", "name"))

    def point(p: tuple) -> dict[str, Any]:
        return {"at": p[2], "value": p[3], "submission": p[1]}

    top_line = None
    if access.level != "own":
        top_line, best = [], INF
        for p in points:
            if p[4] < best:
                best = p[4]
                top_line.append({**point(p), "team": {"id": p[0], "name": names.get(p[0], "")}})
    lines = [
        {"team": {"id": t, "name": names.get(t, "")}, "points": [point(p) for p in points if p[0] == t]}
        for t in team_ids
    ]
    return {
        "phase_split": ps.pk,
        "label": label,
        "ascending": ascending,
        "entries": "public" if access.public_only else "all",
        "top": top_line,
        "teams": lines,
    }
