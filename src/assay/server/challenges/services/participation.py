"""Taking part in a challenge: who may register which team, terms acceptance, approval, leaving.

The registration checks are EvalAI's (``reference/evalai.md`` §6), applied to every member of the
team rather than only the one who clicks: registration open; challenge running; banned addresses;
allowed e-mail domains (suffix match: ``example.org`` admits ``cs.example.org`` but not
``badexample.org``); blocked domains; complete profiles where required; nobody already in the
challenge through another team; ``max_team_members``. Assay adds: every member has a verified
e-mail address, the terms are accepted and the acceptance is recorded on the server (EvalAI keeps
it in the browser only), and invite-only challenges (EvalAI#3284).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from assay.server.refusals import Refusal
from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember, active_membership
from assay.server.teams.services import TeamError, active_members, is_member, user_emails, verified_emails

from .. import signals
from ..models import Challenge, ChallengeInvitation, Participation
from .listing import challenge_listed
from .roles import is_host

MAX_INVITES_PER_REQUEST = 500


class ParticipationError(Refusal):
    """A participation request the rules refuse."""


# --- e-mail rules ------------------------------------------------------------------------------------


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower() if "@" in email else ""


def domain_matches(email: str, domains: list[str]) -> bool:
    """Suffix match on whole labels: ``example.org`` matches ``a@example.org`` and ``a@cs.example.org``."""
    domain = _domain(email)
    for d in domains or []:
        d = str(d).strip().lower().lstrip("@").lstrip(".")
        if d and (domain == d or domain.endswith("." + d)):
            return True
    return False


def email_problems(challenge: Challenge, email: str) -> str | None:
    """Why ``email`` alone could never take part in ``challenge`` (bans and domain lists), or None."""
    email = email.lower()
    if email in {e.lower() for e in challenge.banned_email_ids or []}:
        return f"{email} is banned from this challenge"
    if challenge.blocked_email_domains and domain_matches(email, challenge.blocked_email_domains):
        return f"e-mail addresses at {_domain(email)} may not take part"
    if challenge.allowed_email_domains and not domain_matches(email, challenge.allowed_email_domains):
        allowed = ", ".join(challenge.allowed_email_domains)
        return f"{email} is not at an allowed domain ({allowed})"
    return None


def _member_problems(challenge: Challenge, user, invited: set[str] | None) -> list[str]:
    name = user.get_username()
    problems = []
    verified = verified_emails(user)
    if not verified:
        problems.append(f"{name} has no verified e-mail address")
    banned = {e.lower() for e in challenge.banned_email_ids or []}
    if banned & user_emails(user):
        problems.append(f"{name} is banned from this challenge")
    if challenge.blocked_email_domains and any(
        domain_matches(e, challenge.blocked_email_domains) for e in user_emails(user)
    ):
        problems.append(f"{name} has an e-mail address at a blocked domain")
    if challenge.allowed_email_domains and not any(
        domain_matches(e, challenge.allowed_email_domains) for e in verified
    ):
        allowed = ", ".join(challenge.allowed_email_domains)
        problems.append(f"{name} has no verified e-mail address at an allowed domain ({allowed})")
    if challenge.require_complete_profile:
        from assay.server.accounts.services import profile_of

        if not profile_of(user).is_complete:
            problems.append(f"{name} has not completed their profile (name, affiliation and address)")
    if invited is not None and not (verified & invited):
        problems.append(f"{name} has not been invited to this invite-only challenge")
    if challenge.auditors.filter(user=user).exists():
        problems.append(f"{name} audits this challenge; an auditor may not take part in it")
    return problems


def _invited(challenge: Challenge) -> set[str] | None:
    if not challenge.invite_only:
        return None
    return set(challenge.invitations.values_list("email", flat=True))


def _others_in_challenge(challenge: Challenge, users, team: ParticipantTeam) -> list[str]:
    """Members who already take part through another team (one team per user per challenge)."""
    clash = (
        ParticipantTeamMember.objects.filter(
            active_membership(user__in=users), team__participations__challenge=challenge
        )
        .exclude(team=team)
        .select_related("user", "team")
    )
    return [f"{m.user.get_username()} already takes part through team {m.team.name!r}" for m in clash]


def registration_problems(challenge: Challenge, team: ParticipantTeam, user) -> list[str]:
    """Every reason ``team`` cannot register for ``challenge`` now (empty: it can)."""
    problems = []
    if not is_member(user, team):
        return ["you are not a member of this team"]
    if Participation.objects.filter(challenge=challenge, team=team).exists():
        return ["this team has already registered for this challenge"]
    if challenge.is_disabled:
        problems.append("this challenge is disabled")
    if not challenge.is_registration_open:
        problems.append("registration is closed for this challenge")
    now = timezone.now()
    if now < challenge.start_date:
        problems.append("the challenge has not started yet; registration opens when it starts")
    elif now > challenge.end_date:
        problems.append("the challenge has ended")
    members = list(active_members(team))
    if challenge.max_team_members and len(members) > challenge.max_team_members:
        problems.append(
            f"the team has {len(members)} members; this challenge allows at most {challenge.max_team_members}"
        )
    invited = _invited(challenge)
    for member in members:
        problems.extend(_member_problems(challenge, member, invited))
    problems.extend(_others_in_challenge(challenge, members, team))
    return problems


def joining_problems(team: ParticipantTeam, user) -> list[str]:
    """Why ``user`` may not join ``team`` given the challenges it takes part in (empty: they may)."""
    problems = []
    for participation in team.participations.select_related("challenge"):
        challenge = participation.challenge
        title = challenge.title
        size = active_members(team).count() + 1
        if challenge.max_team_members and size > challenge.max_team_members:
            problems.append(f"{title}: teams have at most {challenge.max_team_members} members")
        problems.extend(f"{title}: {p}" for p in _member_problems(challenge, user, _invited(challenge)))
        problems.extend(f"{title}: {p}" for p in _others_in_challenge(challenge, [user], team))
    return problems


def refuse_ineligible_invitation(sender, *, team: ParticipantTeam, email: str, **kwargs) -> None:
    """``teams.signals.inviting``: refuse at once an address that a challenge of the team would not accept
    (EvalAI does the same)."""
    for participation in team.participations.select_related("challenge"):
        problem = email_problems(participation.challenge, email)
        if problem:
            raise TeamError("email_not_eligible", f"{participation.challenge.title}: {problem}", 403)


def refuse_ineligible_member(sender, *, team: ParticipantTeam, user, **kwargs) -> None:
    """``teams.signals.joining``: a member joins only if every challenge the team takes part in still accepts it."""
    problems = joining_problems(team, user)
    if problems:
        raise TeamError("not_eligible", "; ".join(problems), 403)


# --- registering, terms, leaving ---------------------------------------------------------------------


def visible_to(user, challenge: Challenge) -> bool:
    """Whether the challenge may be shown to ``user`` at all (otherwise it is answered as not found)."""
    return challenge_listed(challenge) or is_host(user, challenge)


def register(user, challenge: Challenge, team: ParticipantTeam, *, accept_terms: bool) -> Participation:
    """Register ``team`` for ``challenge`` with the terms accepted by ``user``; pending approval where the
    host approves teams by hand. Registrations of one challenge are serialised (its row is locked), so
    two teams sharing a member cannot both get in."""
    if not accept_terms:
        raise ParticipationError("terms_not_accepted", "accept the terms and conditions to take part")
    with transaction.atomic():
        locked = Challenge.objects.all()
        if connection.features.has_select_for_update:
            locked = locked.select_for_update()
        challenge = locked.get(pk=challenge.pk)
        problems = registration_problems(challenge, team, user)
        if problems:
            raise ParticipationError("not_eligible", problems[0], 403, problems)
        status = (
            Participation.Status.PENDING if challenge.manual_participant_approval else Participation.Status.APPROVED
        )
        try:
            with transaction.atomic():
                return Participation.objects.create(
                    challenge=challenge,
                    team=team,
                    status=status,
                    terms_accepted_at=timezone.now(),
                    terms_accepted_by=user,
                )
        except IntegrityError:
            raise ParticipationError("already_registered", "this team has already registered", 409) from None


def take_part(user, challenge: Challenge, team: ParticipantTeam, *, accept_terms: bool) -> tuple[Participation, bool]:
    """What "participate" means on every face: register ``team``, or, when it is already registered
    without accepted terms (a host or the demo registered it), record ``user``'s acceptance — as
    ``evalai challenge C participate T`` does on EvalAI, where the terms are the only step left.
    Returns the participation and whether it was created."""
    existing = Participation.objects.filter(challenge=challenge, team=team).first()
    if existing is None or existing.terms_accepted_at is not None:
        return register(user, challenge, team, accept_terms=accept_terms), True
    if not accept_terms:
        raise ParticipationError("terms_not_accepted", "accept the terms and conditions to take part")
    return _record_terms(user, existing), False


def accept_terms(user, participation: Participation) -> Participation:
    """Record that a member accepted the terms (teams registered by an admin have not yet)."""
    return _record_terms(user, participation)


def _record_terms(user, participation: Participation) -> Participation:
    if not is_member(user, participation.team):
        raise ParticipationError("forbidden", "you are not in this team", 403)
    participation.terms_accepted_at = timezone.now()
    participation.terms_accepted_by = user
    participation.save(update_fields=["terms_accepted_at", "terms_accepted_by"])
    return participation


def _team_submissions(participation: Participation) -> QuerySet:
    """Through the reverse of ``Submission.participant_team``: submissions sit a layer above challenges."""
    return participation.team.submissions.filter(phase__challenge=participation.challenge)


def withdraw(user, participation: Participation) -> None:
    """A team leaves a challenge, which EvalAI allows only while it has made no submission."""
    if not is_member(user, participation.team):
        raise ParticipationError("forbidden", "you are not in this team", 403)
    with transaction.atomic():
        if _team_submissions(participation).exists():
            raise ParticipationError("has_submissions", "a team that has submitted cannot leave the challenge", 409)
        participation.delete()


# --- hosts: approval, removal, invitations -----------------------------------------------------------


def _need_host(user, challenge: Challenge) -> None:
    if not is_host(user, challenge):
        raise ParticipationError("forbidden", "only the challenge's hosts may do this", 403)


def set_status(user, participation: Participation, status: str) -> Participation:
    """Approve or disapprove a team (a disapproved team keeps its submissions but cannot submit)."""
    _need_host(user, participation.challenge)
    if status not in (Participation.Status.APPROVED, Participation.Status.DISAPPROVED, Participation.Status.PENDING):
        raise ParticipationError("bad_status", f"{status!r} is not a participation status")
    newly_approved = status == Participation.Status.APPROVED and participation.status != status
    with transaction.atomic():
        participation.status = status
        participation.save(update_fields=["status"])
        if newly_approved:
            signals.participation_approved.send(sender=Participation, participation=participation)
    return participation


def remove(user, participation: Participation) -> None:
    """Hosts remove a team that has not submitted; one that has can be disapproved instead."""
    _need_host(user, participation.challenge)
    with transaction.atomic():
        if _team_submissions(participation).exists():
            raise ParticipationError(
                "has_submissions",
                "this team has submissions: disapprove it instead (it keeps its entries but cannot submit)",
                409,
            )
        participation.delete()


def invite_emails(user, challenge: Challenge, emails: list[str]) -> list[str]:
    """Add addresses to an invite-only challenge's list; returns the ones newly added."""
    _need_host(user, challenge)
    cleaned = []
    for raw in emails[: MAX_INVITES_PER_REQUEST + 1]:
        email = raw.strip().lower()
        if not email:
            continue
        try:
            validate_email(email)
        except ValidationError:
            raise ParticipationError("bad_email", f"{raw.strip()[:100]!r} is not a valid e-mail address") from None
        cleaned.append(email)
    if len(cleaned) > MAX_INVITES_PER_REQUEST:
        raise ParticipationError("too_many", f"invite at most {MAX_INVITES_PER_REQUEST} addresses at a time")
    existing = set(challenge.invitations.values_list("email", flat=True))
    new = sorted(set(cleaned) - existing)
    ChallengeInvitation.objects.bulk_create(
        [ChallengeInvitation(challenge=challenge, email=e, invited_by=user) for e in new], ignore_conflicts=True
    )
    return new


def uninvite(user, challenge: Challenge, email: str) -> None:
    _need_host(user, challenge)
    challenge.invitations.filter(email=email.strip().lower()).delete()


def participations(challenge: Challenge) -> QuerySet[Participation]:
    return (
        Participation.objects.filter(challenge=challenge)
        .select_related("team", "terms_accepted_by")
        .prefetch_related("team__members")
        .order_by("status", "team__name")
    )
