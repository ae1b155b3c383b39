"""Who someone is to a challenge: host, participant (through which team), or nobody."""

from __future__ import annotations

from ..models import Challenge, Participation


def is_host(user, challenge: Challenge) -> bool:
    """Members of the challenge's host team, and staff."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    return challenge.host_team.memberships.filter(user=user).exists()


def participation_of(user, challenge: Challenge) -> Participation | None:
    """The user's team's registration in ``challenge`` (a user has at most one team per challenge)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Participation.objects.select_related("team")
        .filter(challenge=challenge, team__memberships__user=user, team__memberships__status="active")
        .first()
    )


def team_emails(team) -> list[str]:
    return [e.lower() for e in team.members.values_list("email", flat=True) if e]
