"""Team rules as plain functions: creating teams, e-mail invitations that the invitee accepts, leaving.

EvalAI adds an invited address to a team at once, without asking its owner; here an invitation is a
link sent by e-mail, and the invitee joins only by accepting it while signed in with that address
verified. Accepting re-checks every rule of every challenge the team has registered for (one team
per user per challenge, bans, e-mail domains, team size, invite-only lists, complete profiles), so
an invitation cannot smuggle anyone past a challenge's rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from assay.server.accounts.services import unverified_email_refusal
from assay.server.refusals import Refusal

from . import signals
from .models import HostTeam, HostTeamMember, ParticipantTeam, ParticipantTeamMember, TeamInvitation, active_membership

INVITATION_DAYS = 14
MAX_PENDING_INVITATIONS = 50
NAME_MAX = 100


class TeamError(Refusal):
    """A team action the rules refuse."""


# --- who is who --------------------------------------------------------------------------------------


def user_emails(user) -> set[str]:
    """Every address a user has (verified or not, lower-cased): what bans and blocked domains look at."""
    from allauth.account.models import EmailAddress

    emails = {e.lower() for e in EmailAddress.objects.filter(user=user).values_list("email", flat=True)}
    if user.email:
        emails.add(user.email.lower())
    return emails


def verified_emails(user) -> set[str]:
    """Addresses the user proved to own: what invitations, allow-lists and allowed domains accept."""
    from allauth.account.models import EmailAddress

    return {e.lower() for e in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)}


def is_member(user, team: ParticipantTeam) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return team.memberships.filter(active_membership(user=user)).exists()


def is_host(user, team: HostTeam) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and team.memberships.filter(user=user).exists()


def active_members(team: ParticipantTeam):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(active_membership("participant_memberships__", team=team))


class ActiveMembersOf:
    """Each team's active members (:func:`active_members`: the one rule), by username, read once per team: for
    exports that list many rows of a few teams (a row per submission named the team's members by a query of
    its own, and named invited members too)."""

    def __init__(self) -> None:
        self._by_team: dict[int, list] = {}

    def __call__(self, team: ParticipantTeam) -> list:
        found = self._by_team.get(team.pk)
        if found is None:
            found = self._by_team[team.pk] = list(active_members(team).order_by("username"))
        return found


def participant_teams_of(user) -> QuerySet[ParticipantTeam]:
    return ParticipantTeam.objects.filter(active_membership("memberships__", user=user)).order_by("name")


def host_teams_of(user) -> QuerySet[HostTeam]:
    return HostTeam.objects.filter(memberships__user=user).order_by("name")


# --- creating teams ----------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise TeamError("name_required", "a team needs a name")
    if len(name) > NAME_MAX:
        raise TeamError("name_too_long", f"a team name has at most {NAME_MAX} characters")
    if any(ord(c) < 32 for c in name):
        raise TeamError("bad_name", "a team name cannot hold control characters")
    return name


@transaction.atomic
def create_host_team(name: str, user, *, operator: bool = False) -> HostTeam:
    """A host team whose creator is its first (admin) member. Its creator's e-mail address must be
    verified, unless the server's operator makes the team for them (``assay admin import-bundle``)."""
    if not operator and (reason := unverified_email_refusal(user, "create a host team")):
        raise TeamError("email_unverified", reason, 403)
    name = _clean_name(name)
    if HostTeam.objects.filter(name__iexact=name).exists():
        raise TeamError("name_taken", f"there is already a host team called {name!r}", 409)
    team = HostTeam.objects.create(name=name, created_by=user)
    HostTeamMember.objects.create(team=team, user=user, permission=HostTeamMember.Permission.ADMIN)
    return team


def create_participant_team(user, name: str, team_url: str = "") -> ParticipantTeam:
    """A participant team with ``user`` as its creator and only member."""
    if not getattr(user, "is_authenticated", False):
        raise TeamError("login_required", "sign in to create a team", 401)
    name = _clean_name(name)
    team_url = (team_url or "").strip()
    if team_url:
        from django.core.validators import URLValidator

        try:
            URLValidator(schemes=["http", "https"])(team_url)
        except ValidationError:
            raise TeamError("bad_url", "the team's web page must be an http(s) address") from None
    try:
        with transaction.atomic():
            if ParticipantTeam.objects.filter(name__iexact=name).exists():
                raise TeamError("name_taken", f"there is already a team called {name!r}", 409)
            team = ParticipantTeam.objects.create(name=name, team_url=team_url[:200], created_by=user)
            ParticipantTeamMember.objects.create(team=team, user=user)
    except IntegrityError:
        raise TeamError("name_taken", f"there is already a team called {name!r}", 409) from None
    return team


# --- invitations -------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamError("bad_email", "that is not a valid e-mail address") from None
    if len(email) > 254:
        raise TeamError("bad_email", "that e-mail address is too long")
    return email


def invite(inviter, team: ParticipantTeam | HostTeam, email: str) -> tuple[TeamInvitation, str]:
    """Invite ``email`` to a team. Returns the invitation and its token (for the link; shown once).

    Inviting an address again replaces its pending invitation (a fresh link, a fresh expiry).
    """
    email = _clean_email(email)
    host = isinstance(team, HostTeam)
    if not (is_host(inviter, team) if host else is_member(inviter, team)):
        raise TeamError("forbidden", "only members of a team invite people to it", 403)
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    owners = set(EmailAddress.objects.filter(email__iexact=email).values_list("user_id", flat=True))
    owners |= set(get_user_model().objects.filter(email__iexact=email).values_list("pk", flat=True))
    if owners and team.memberships.filter(user_id__in=owners).exists():
        raise TeamError("already_member", f"{email} is already in this team", 409)
    if not host:
        signals.inviting.send(sender=ParticipantTeam, team=team, email=email)  # challenges may refuse it
    team_filter = {"host_team": team} if host else {"participant_team": team}
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        pending = TeamInvitation.objects.filter(status=TeamInvitation.Status.PENDING, **team_filter)
        pending.filter(email=email).update(status=TeamInvitation.Status.REVOKED, responded_at=timezone.now())
        if pending.count() >= MAX_PENDING_INVITATIONS:
            raise TeamError("too_many_invitations", f"a team has at most {MAX_PENDING_INVITATIONS} open invitations")
        invitation = TeamInvitation.objects.create(
            email=email,
            invited_by=inviter,
            token_hash=_hash(token),
            expires_at=timezone.now() + dt.timedelta(days=INVITATION_DAYS),
            **team_filter,
        )
    return invitation, token


def send_invitation(invitation: TeamInvitation, link: str) -> None:
    """E-mail the invitation link. The link holds the token; the page behind it asks to sign in."""
    context = {"invitation": invitation, "team": invitation.team, "link": link}
    subject = f"[Assay] {invitation.invited_by.get_username()} invites you to join {invitation.team.name}"
    body = render_to_string("web/email/team_invitation.txt", context)
    send_mail(subject, body, None, [invitation.email])


def invitation_by_token(token: str) -> TeamInvitation | None:
    if not token or len(token) > 100:
        return None
    return (
        TeamInvitation.objects.select_related("participant_team", "host_team", "invited_by")
        .filter(token_hash=_hash(token))
        .first()
    )


def pending_invitations_for(user) -> QuerySet[TeamInvitation]:
    """Open invitations addressed to any verified address of ``user``."""
    emails = verified_emails(user)
    return TeamInvitation.objects.filter(
        status=TeamInvitation.Status.PENDING, email__in=emails, expires_at__gt=timezone.now()
    ).select_related("participant_team", "host_team", "invited_by")


def _check_open(invitation: TeamInvitation) -> None:
    if invitation.status != TeamInvitation.Status.PENDING:
        raise TeamError("invitation_closed", f"this invitation was {invitation.status}", 409)
    if invitation.expires_at <= timezone.now():
        raise TeamError("invitation_expired", "this invitation has expired; ask the team for a new one", 410)


def _check_addressee(user, invitation: TeamInvitation) -> None:
    if invitation.email not in verified_emails(user):
        raise TeamError(
            "wrong_account",
            f"this invitation is for {invitation.email}: sign in with that address (verified) to answer it",
            403,
        )


def accept_invitation(user, invitation: TeamInvitation) -> None:
    """Join the team, if every challenge the team takes part in would still accept it with ``user``."""
    with transaction.atomic():
        invitation = TeamInvitation.objects.select_for_update().get(pk=invitation.pk)
        _check_open(invitation)
        _check_addressee(user, invitation)
        if invitation.host_team_id:
            HostTeamMember.objects.get_or_create(
                team_id=invitation.host_team_id, user=user, defaults={"permission": HostTeamMember.Permission.ADMIN}
            )
        else:
            team = ParticipantTeam.objects.get(pk=invitation.participant_team_id)
            if is_member(user, team):
                raise TeamError("already_member", "you are already in this team", 409)
            signals.joining.send(sender=ParticipantTeam, team=team, user=user)  # challenges may refuse it
            ParticipantTeamMember.objects.update_or_create(
                team=team, user=user, defaults={"status": ParticipantTeamMember.Status.ACTIVE}
            )
        invitation.status = TeamInvitation.Status.ACCEPTED
        invitation.accepted_by = user
        invitation.responded_at = timezone.now()
        invitation.save(update_fields=["status", "accepted_by", "responded_at"])


def decline_invitation(user, invitation: TeamInvitation) -> None:
    with transaction.atomic():
        invitation = TeamInvitation.objects.select_for_update().get(pk=invitation.pk)
        _check_open(invitation)
        _check_addressee(user, invitation)
        invitation.status = TeamInvitation.Status.DECLINED
        invitation.responded_at = timezone.now()
        invitation.save(update_fields=["status", "responded_at"])


def revoke_invitation(user, invitation: TeamInvitation) -> None:
    team = invitation.team
    allowed = is_host(user, team) if invitation.host_team_id else is_member(user, team)
    if not allowed:
        raise TeamError("forbidden", "only members of the team revoke its invitations", 403)
    updated = TeamInvitation.objects.filter(pk=invitation.pk, status=TeamInvitation.Status.PENDING).update(
        status=TeamInvitation.Status.REVOKED, responded_at=timezone.now()
    )
    if not updated:
        raise TeamError("invitation_closed", "this invitation is no longer open", 409)


# --- leaving and removing ----------------------------------------------------------------------------


def remove_member(actor, team: ParticipantTeam, member) -> None:
    """A member leaves, or the team's creator removes one. The last member cannot leave a team that
    has registered for a challenge (its registration and submissions would belong to nobody)."""
    if not is_member(actor, team):
        raise TeamError("forbidden", "you are not in this team", 403)
    if actor.pk != member.pk and actor.pk != team.created_by_id:
        raise TeamError("forbidden", "only the team's creator removes other members", 403)
    with transaction.atomic():
        memberships = team.memberships.select_for_update().filter(active_membership())
        ids = list(memberships.values_list("user_id", flat=True))
        if member.pk not in ids:
            raise TeamError("not_member", "that person is not in this team", 404)
        if len(ids) == 1 and team.participations.exists():
            raise TeamError("last_member", "the last member cannot leave a team that takes part in a challenge", 409)
        team.memberships.filter(user=member).delete()


def remove_host_member(actor, team: HostTeam, member) -> None:
    if not is_host(actor, team):
        raise TeamError("forbidden", "you are not in this host team", 403)
    with transaction.atomic():
        ids = list(team.memberships.select_for_update().values_list("user_id", flat=True))
        if member.pk not in ids:
            raise TeamError("not_member", "that person is not in this host team", 404)
        if len(ids) == 1:
            raise TeamError("last_member", "a host team keeps at least one member", 409)
        team.memberships.filter(user=member).delete()


def team_invitations(team: ParticipantTeam | HostTeam) -> QuerySet[TeamInvitation]:
    field = "host_team" if isinstance(team, HostTeam) else "participant_team"
    return TeamInvitation.objects.filter(Q(**{field: team}), status=TeamInvitation.Status.PENDING).select_related(
        "invited_by"
    )
