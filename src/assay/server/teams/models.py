"""Teams: hosts organise challenges as a host team; participants submit as a participant team."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class HostTeam(models.Model):
    """The owners of challenges. Every member may manage the team's challenges."""

    name = models.CharField(max_length=100, unique=True)
    team_url = models.URLField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_host_teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="HostTeamMember", related_name="host_teams")

    def __str__(self) -> str:
        return self.name


class HostTeamMember(models.Model):
    class Permission(models.TextChoices):
        ADMIN = "admin", "Admin"
        WRITE = "write", "Write"
        READ = "read", "Read"

    team = models.ForeignKey(HostTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="host_memberships")
    permission = models.CharField(max_length=10, choices=Permission.choices, default=Permission.ADMIN)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_host_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ParticipantTeam(models.Model):
    """A team that takes part in challenges; one user belongs to at most one team per challenge."""

    name = models.CharField(max_length=100, unique=True)
    team_url = models.URLField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_participant_teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ParticipantTeamMember", related_name="participant_teams"
    )

    def __str__(self) -> str:
        return self.name


class ParticipantTeamMember(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INVITED = "invited", "Invited"

    team = models.ForeignKey(ParticipantTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participant_memberships")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_participant_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"
