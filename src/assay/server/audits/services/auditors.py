"""A challenge's auditors, named by its hosts: people who review the teams' questionnaire answers.

An auditor is not a participant of the challenge (a member of a registered team would review their own
or their rivals' work) and need not be a host. Removing an auditor keeps the reviews they wrote.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from assay.server.challenges.models import Challenge, ChallengeAuditor
from assay.server.challenges.services.roles import is_auditor, participation_of

from .access import AuditRefusal, may_manage_auditors

MAX_WHO = 254  # an e-mail address's longest form


def list_auditors(actor, challenge: Challenge) -> QuerySet[ChallengeAuditor]:
    """The challenge's auditors, oldest first: for its hosts and its auditors (who may want a second)."""
    if not (may_manage_auditors(actor, challenge) or is_auditor(actor, challenge)):
        raise AuditRefusal("forbidden", "Only the challenge's hosts and auditors see its auditors.", 403)
    return challenge.auditors.select_related("user", "added_by").order_by("added_at", "id")


def _require_manager(actor, challenge: Challenge) -> None:
    if not may_manage_auditors(actor, challenge):
        raise AuditRefusal("forbidden", "Only the challenge's hosts name and remove its auditors.", 403)


def find_user(who: object):
    """The active user whose username or verified e-mail address is ``who`` (case-insensitive); an
    unverified address names nobody (anyone may type one into their account)."""
    if not isinstance(who, str) or not who.strip():
        raise AuditRefusal("invalid", "Name the auditor by username or e-mail address.", 400)
    who = who.strip()
    if len(who) > MAX_WHO:
        raise AuditRefusal("invalid", f"A username or e-mail address is at most {MAX_WHO} characters.", 400)
    found = list(
        get_user_model()
        .objects.filter(Q(username__iexact=who) | Q(emailaddress__email__iexact=who, emailaddress__verified=True))
        .filter(is_active=True)
        .distinct()[:2]
    )
    if not found:
        raise AuditRefusal("invalid", f"No user has the username or e-mail address {who!r}.", 400)
    if len(found) > 1:
        raise AuditRefusal("invalid", f"{who!r} names more than one user; give the username instead.", 400)
    return found[0]


def add_auditor(actor, challenge: Challenge, who: object) -> ChallengeAuditor:
    """Name the user ``who`` (username or e-mail) auditor of ``challenge``; hosts only."""
    _require_manager(actor, challenge)
    user = find_user(who)
    participation = participation_of(user, challenge)
    if participation is not None:
        raise AuditRefusal(
            "participant",
            f"{user.username} is a member of team {participation.team.name!r}, which takes part in this challenge;"
            " an auditor may not be a participant of the challenge they audit.",
            409,
        )
    if challenge.auditors.filter(user=user).exists():
        raise AuditRefusal("conflict", f"{user.username} already audits this challenge.", 409)
    try:
        with transaction.atomic():
            return ChallengeAuditor.objects.create(challenge=challenge, user=user, added_by=actor)
    except IntegrityError:  # added a moment ago by another host
        raise AuditRefusal("conflict", f"{user.username} already audits this challenge.", 409) from None


def remove_auditor(actor, challenge: Challenge, user_id: int) -> None:
    """Take ``user_id`` off the challenge's auditors (their reviews stay, with their name); hosts only."""
    _require_manager(actor, challenge)
    deleted, _ = challenge.auditors.filter(user_id=user_id).delete()
    if not deleted:
        raise AuditRefusal("not_found", "That user does not audit this challenge.", 404)
