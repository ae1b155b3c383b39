"""Team rules as plain functions."""

from __future__ import annotations

from django.db import transaction

from .models import HostTeam, HostTeamMember


@transaction.atomic
def create_host_team(name: str, user) -> HostTeam:
    """A host team whose creator is its first (admin) member."""
    team = HostTeam.objects.create(name=name, created_by=user)
    HostTeamMember.objects.create(team=team, user=user, permission=HostTeamMember.Permission.ADMIN)
    return team


def is_host(user, team: HostTeam) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and team.memberships.filter(user=user).exists()
