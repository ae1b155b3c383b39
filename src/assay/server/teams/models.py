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


def active_membership(via: str = "", **same_row) -> models.Q:
    """The one test of "an active member of a participant team": every rule that asks it (who sees a
    submission, who acts for a team, who counts towards a team's size) builds its filter here.

    ``via`` is the path from the queried model to the membership row (``""`` on ``ParticipantTeamMember``,
    ``"memberships__"`` from ``ParticipantTeam``, ``"participant_memberships__"`` from the user,
    ``"participant_team__memberships__"`` from a submission); ``same_row`` are further conditions on that same
    row (``user=…``, ``team_id=…``), kept in one ``Q`` so that across a to-many relation they bind one row.
    An account's own ``is_active`` is checked where a person signs in (every face's authentication), so a
    reader is active; a list of people to reach adds ``user__is_active=True``.
    """
    row = {"status": ParticipantTeamMember.Status.ACTIVE, **same_row}
    return models.Q(**{f"{via}{name}": value for name, value in row.items()})


class TeamInvitation(models.Model):
    """An e-mail invitation to a participant or host team; nobody joins until the invitee accepts.

    EvalAI adds an invited address to the team at once; here the link in the e-mail leads to a page
    where the invitee, signed in with that verified address, accepts or declines. Only the SHA-256 of
    the link's token is stored.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    participant_team = models.ForeignKey(
        ParticipantTeam, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    host_team = models.ForeignKey(HostTeam, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="Stored lower-cased.")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(participant_team__isnull=True, host_team__isnull=False)
                | models.Q(participant_team__isnull=False, host_team__isnull=True),
                name="invitation_has_one_team",
            ),
            models.UniqueConstraint(
                fields=["participant_team", "email"],
                condition=models.Q(status="pending"),
                name="one_pending_participant_invitation",
            ),
            models.UniqueConstraint(
                fields=["host_team", "email"], condition=models.Q(status="pending"), name="one_pending_host_invitation"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.team}"

    @property
    def team(self) -> ParticipantTeam | HostTeam:
        return self.participant_team or self.host_team  # type: ignore[return-value]

    @property
    def is_host_team(self) -> bool:
        return self.host_team_id is not None
