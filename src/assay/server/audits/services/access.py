"""Who may do what with a submission's audit: THE rule, asked by every face (web, /api/v1, report, exports).

The roles come from ``challenges.services.roles`` (hosts, auditors; staff count as both) and the team from
the submission; nothing here re-derives them. In short (issue 14, contract section 5):

- per-case rows, the summary and report before release, the manifest and the trail: hosts, auditors, staff;
- the submitting team: its own answers (written while in draft), the review state, ratings and comments on
  its answers, always; the summary, report, manifest and trail only while a release stands;
- a retracted release hides the results again from the team but its reason stays readable;
- other teams and strangers: nothing (the faces answer 404, as for any object one may not see).

An auditor reviews only a challenge they were named for, and never a submission of a team they belong to.
The ``may_*`` functions answer yes/no; :func:`require_visible` and :func:`require` turn a "no" into the
refusal every face renders (404 when the audit is not even visible, 403 when it is but the act is not).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q, QuerySet

from assay.server.challenges.models import Challenge
from assay.server.challenges.services.roles import is_auditor, is_host
from assay.server.refusals import Refusal
from assay.server.submissions.models import Submission
from assay.server.submissions.services.cases import may_read_cases as cases_rule
from assay.server.teams.models import active_membership
from assay.server.teams.services import is_member

from ..models import Release


class AuditRefusal(Refusal):
    """A refusal of the audit workflow (access, states, inputs); its status says which."""


def has_audit(submission: Submission) -> bool:
    """The submission's phase is audited (its bundle has an ``audit`` key)."""
    return submission.phase.audit is not None


def is_submitter(user, submission: Submission) -> bool:
    """An active member of the submitting team."""
    return is_member(user, submission.participant_team)


def is_challenge_auditor(user, submission: Submission) -> bool:
    """Named auditor (or staff) of the submission's challenge; a member of the submitting team never is, for it."""
    return is_auditor(user, submission.phase.challenge) and not is_submitter(user, submission)


def is_overseer(user, submission: Submission) -> bool:
    """Hosts, auditors and staff: those who see an audit's private parts at every stage."""
    return is_host(user, submission.phase.challenge) or is_challenge_auditor(user, submission)


def release_of(submission: Submission) -> Release | None:
    """Read afresh (not the instance's cached reverse relation: a release may change under a held object)."""
    return Release.objects.select_related("released_by").filter(submission_id=submission.pk).first()


def is_released(submission: Submission) -> bool:
    """A release stands (made and not retracted)."""
    release = release_of(submission)
    return release is not None and release.state == Release.State.RELEASED


# --- the rules -------------------------------------------------------------------------------------------


def may_read_cases(user, submission: Submission) -> bool:
    """Per-case rows carry the reference labels: hosts, the challenge's auditors (not for their own team) and
    staff, nobody else. The rule is the submissions app's own (it serves the rows, and sits below audits);
    this is the same question asked here so that every audit face finds all its rules in one module."""
    return cases_rule(user, submission)


def may_see_audit(user, submission: Submission) -> bool:
    """That the audit exists, its state, the answers, reviews (ratings, comments) and the release state:
    the submitting team, hosts, auditors, staff."""
    return has_audit(submission) and (is_overseer(user, submission) or is_submitter(user, submission))


def may_read_audit(user, submission: Submission) -> bool:
    """The summary, report, manifest and trail: overseers always; the submitting team while released."""
    if not has_audit(submission):
        return False
    if is_overseer(user, submission):
        return True
    return is_submitter(user, submission) and is_released(submission)


def may_answer(user, submission: Submission) -> bool:
    """Writing the questionnaire answers: the submitting team's members (whether the state allows it is
    the answers service's question)."""
    return has_audit(submission) and is_submitter(user, submission)


def may_review(user, submission: Submission) -> bool:
    """Starting, rating and deciding a review: the challenge's auditors, never for their own team."""
    return has_audit(submission) and is_challenge_auditor(user, submission)


def may_release(user, submission: Submission) -> bool:
    """Releasing and retracting: the challenge's hosts (the data owner) and staff."""
    return has_audit(submission) and is_host(user, submission.phase.challenge)


def may_manage_auditors(user, challenge: Challenge) -> bool:
    """Adding and removing a challenge's auditors: its hosts and staff."""
    return is_host(user, challenge)


# --- refusals --------------------------------------------------------------------------------------------


def require_visible(user, submission: Submission) -> None:
    """404 unless the user may see the audit at all (strangers learn nothing, not even that it exists)."""
    if not may_see_audit(user, submission):
        raise AuditRefusal("not_found", "No audit of this submission is visible to you.", 404)


def require(rule: Callable[[object, Submission], bool], user, submission: Submission, message: str) -> None:
    """404 when the audit is not visible to the user; 403 with ``message`` when it is but ``rule`` says no."""
    require_visible(user, submission)
    if not rule(user, submission):
        raise AuditRefusal("forbidden", message, 403)


def require_results(user, submission: Submission) -> None:
    """The report, its PDF, the manifest and the trail: 404 when the audit is hidden from the user, 403
    saying why when they see it but its results are not (or no longer) released to them."""
    given = release_of(submission)
    if given is not None and given.state == given.State.RETRACTED:
        why = f"The hosts retracted the release of these audit results: {given.retraction_reason}"
    else:
        why = "The audit results are private until the challenge's hosts release them after an approved review."
    require(may_read_audit, user, submission, why)


# --- what a user may list --------------------------------------------------------------------------------


def audited_challenges(user) -> QuerySet[Challenge]:
    """Challenges the user was named auditor of (staff: every challenge)."""
    if not getattr(user, "is_authenticated", False):
        return Challenge.objects.none()
    if user.is_staff:
        return Challenge.objects.all()
    return Challenge.objects.filter(auditors__user=user).distinct()


def visible_audits(user) -> QuerySet[Submission]:
    """Submissions of audited phases whose audit :func:`may_see_audit` shows the user: the team's own,
    and every one of the challenges the user hosts or audits (for auditors: not their own team's, as
    reviewers; they see those as members)."""
    audited = Submission.objects.filter(phase__audit__isnull=False)
    if not getattr(user, "is_authenticated", False):
        return audited.none()
    if user.is_staff:
        return audited
    own = active_membership("participant_team__memberships__", user=user)
    hosted = Q(phase__challenge__host_team__memberships__user=user)
    audits = Q(phase__challenge__auditors__user=user)
    return audited.filter(own | hosted | audits).distinct()


def reviewable_audits(user) -> QuerySet[Submission]:
    """Submissions the user may review (:func:`may_review`): audited phases of challenges they audit, minus
    their own team's."""
    audited = Submission.objects.filter(phase__audit__isnull=False)
    if not getattr(user, "is_authenticated", False):
        return audited.none()
    own_teams = Submission.objects.filter(active_membership("participant_team__memberships__", user=user)).values("pk")
    if not user.is_staff:
        audited = audited.filter(phase__challenge__auditors__user=user)
    return audited.exclude(pk__in=own_teams).distinct()
