"""Who someone is to a challenge: host, participant (through which team), or nobody."""

from __future__ import annotations

from django.db import connection

from assay.server.prepared import Prepared
from assay.server.teams.models import HostTeamMember, active_membership

from ..models import Challenge, Participation


def is_host(user, challenge: Challenge) -> bool:
    """Members of the challenge's host team, and staff."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    if connection.alias not in _HOSTS:
        qs = HostTeamMember.objects.filter(team_id=_TEAM, user_id=_USER).values_list("pk", flat=True)[:1]
        _HOSTS[connection.alias] = Prepared(qs, team=_TEAM, user=_USER)
    return bool(_HOSTS[connection.alias].rows(team=challenge.host_team_id, user=user.pk))


# is_host's query, compiled once per database: every result a team member reads (pages, API, e-mails) asks it.
_HOSTS: dict[str, Prepared] = {}
_TEAM = -103  # a stand-in: no row has a negative id

# participation_of's query, compiled once per database (see assay.server.prepared): every submit, and
# most participant pages, ask it; the ORM took several times longer to build it than to run it.
_PARTICIPATION: dict[str, Prepared] = {}
_CHALLENGE, _USER = -101, -102  # stand-ins: no row has a negative id


def participation_of(user, challenge: Challenge) -> Participation | None:
    """The user's team's registration in ``challenge`` (a user has at most one team per challenge)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if connection.alias not in _PARTICIPATION:
        qs = (
            Participation.objects.select_related("team")
            .filter(active_membership("team__memberships__", user_id=_USER), challenge_id=_CHALLENGE)
            .order_by("pk")[:1]
        )
        _PARTICIPATION[connection.alias] = Prepared(qs, challenge=_CHALLENGE, user=_USER)
    found = _PARTICIPATION[connection.alias].instances(challenge=challenge.pk, user=user.pk)
    return found[0] if found else None


def team_emails(team) -> list[str]:
    return [e.lower() for e in team.members.values_list("email", flat=True) if e]


def is_auditor(user, challenge: Challenge) -> bool:
    """People a host named to review the challenge's audits (``ChallengeAuditor``); staff count too."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    return challenge.auditors.filter(user=user).exists()
