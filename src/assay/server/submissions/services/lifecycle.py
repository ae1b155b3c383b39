"""What happens to a submission after it is made: cancel, re-run, resume, hide, publish, describe, host marks.

Each action checks who may do it and the current state inside one transaction (the row is locked
where the database can), so two people acting at once cannot both win.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from assay.server.challenges.services.roles import is_host
from assay.server.teams.services import is_member

from .. import signals
from ..models import Submission, SubmissionAttempt
from . import cases, retention, scored_against
from .errors import SubmissionError
from .submit import lock_numbering, unpublish_others

S = Submission.Status
CANCELLABLE = (S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RESUMING)


def _locked(sub: Submission) -> Submission:
    return Submission.objects.select_for_update().select_related("phase__challenge__host_team").get(pk=sub.pk)


def _need_member_or_host(user, sub: Submission) -> bool:
    """Returns whether the user is a host; refuses anyone who is neither host nor team member."""
    host = is_host(user, sub.phase.challenge)
    if not host and not is_member(user, sub.participant_team):
        raise SubmissionError("not_found", "no such submission", 404)
    return host


@transaction.atomic
def cancel(user, sub: Submission) -> Submission:
    sub = _locked(sub)
    host = _need_member_or_host(user, sub)
    challenge = sub.phase.challenge
    if host and not (user.is_staff or challenge.allow_host_cancel_submissions or is_member(user, sub.participant_team)):
        raise SubmissionError("forbidden", "this challenge does not let hosts cancel submissions", 403)
    allowed = CANCELLABLE + ((S.RUNNING,) if challenge.allow_cancel_running_submissions or user.is_staff else ())
    if sub.status not in allowed:
        raise SubmissionError("bad_state", f"a {sub.status} submission cannot be cancelled", 409)
    sub.status = S.CANCELLED
    sub.lease_owner = ""
    sub.lease_expires_at = None
    sub.completed_at = timezone.now()
    sub.save()
    signals.changed.send(sender=Submission, submission=sub)
    return sub


def _may_reevaluate(user, sub: Submission) -> bool:
    host = _need_member_or_host(user, sub)
    if not host and not sub.phase.challenge.allow_participants_resubmissions:
        raise SubmissionError("forbidden", "only the hosts may re-run or resume submissions here", 403)
    return host


#: What a host may evaluate again in place: an evaluation that ended (or was cancelled before it ended).
REEVALUABLE = (S.FINISHED, S.FAILED, S.PARTIALLY_EVALUATED, S.CANCELLED)
#: An evaluation's files: an in-place re-run moves them to the attempt it keeps (the evidence stays).
EVALUATION_FILES = ("stdout_file", "stderr_file", "submission_result_file", "submission_metadata_file")


@transaction.atomic
def rerun(user, sub: Submission, *, as_new: bool = False) -> Submission:
    """Evaluate a submission again. A host's re-run evaluates the same submission again (a new attempt; the
    earlier evaluation kept as a :class:`SubmissionAttempt`), as EvalAI's hosts do; ``as_new`` (a host asking
    for a copy) and a participant's re-run queue a copy instead and cancel the old row (limits apply to
    participants).

    A copy is numbered under :func:`~.submit.lock_numbering`, so a submit or another copy at the same time gets
    another number; it is taken before the row's lock, in submit's order: ``_locked`` also locks the phase's row,
    for which a submit holding the registration waits (its INSERT's foreign key check), so the other order could
    leave each waiting for the other."""
    host = _may_reevaluate(user, sub)  # the user and the challenge decide it, never the row's state
    numbering = lock_numbering(sub.phase, sub.participant_team) if as_new or not host else None
    sub = _locked(sub)
    if sub.ignore_submission:
        raise SubmissionError("bad_state", "a hidden submission cannot be re-run", 409)
    if sub.status == S.RUNNING:
        raise SubmissionError("bad_state", "cancel the running evaluation before re-running it", 409)
    retention.require_kept(sub, "input_file")
    if numbering is None:
        return _reevaluate(user, sub)
    number = numbering.take(limits=not host)
    clone = Submission.objects.get(pk=sub.pk)
    clone.pk = None
    clone.id = None
    clone.status = S.SUBMITTED
    clone.submission_number = number
    clone.rerun_resumed_at = timezone.now()
    for name in EVALUATION_FILES:
        setattr(clone, name, "")
    clone.output = None
    clone.failure_reason = ""
    clone.attempt = clone.expired_leases = 0
    clone.lease_owner = ""
    clone.lease_expires_at = clone.started_at = clone.completed_at = None
    scored_against.forget(clone)
    clone.save()
    Submission.objects.filter(pk=clone.pk).update(submitted_at=timezone.now())
    sub.status = S.CANCELLED
    sub.save(update_fields=["status"])
    signals.changed.send(sender=Submission, submission=sub)
    clone.refresh_from_db()
    return clone


def _reevaluate(user, sub: Submission) -> Submission:
    """The same row queued again: its evaluation so far becomes an attempt, its result and logs are cleared,
    and its entries leave the standings until the new result arrives (the standings read the status)."""
    if sub.status not in REEVALUABLE:
        raise SubmissionError(
            "bad_state",
            f"a {sub.get_status_display().lower()} submission is waiting for its evaluation already; "
            "re-run it once that has ended",
            409,
        )
    now = timezone.now()
    number = sub.attempts.count() + 1
    SubmissionAttempt.objects.create(
        submission=sub, number=number, status=sub.status, started_at=sub.started_at, completed_at=sub.completed_at,
        output=sub.output, failure_reason=sub.failure_reason, rerun_by=user, rerun_at=now,
        worker_id=sub.leased_by_id if sub.started_at else None,  # the token whose worker ran it (kept at re-claims)
        **{name: getattr(sub, name).name for name in EVALUATION_FILES}, **scored_against.kept_on_attempt(sub),
    )  # fmt: skip
    scored_against.forget(sub)  # the next claim records what the new evaluation is handed
    cases.drop_cases(sub)  # the earlier evaluation's per-case rows go with it; the new one writes its own
    sub.status = S.SUBMITTED
    sub.output = None
    sub.failure_reason = ""
    for name in EVALUATION_FILES:
        setattr(sub, name, "")
    sub.started_at = sub.completed_at = sub.lease_expires_at = None
    sub.lease_owner = ""
    sub.expired_leases = 0  # ``attempt`` (claims so far) goes on counting: a late result of a lost claim is refused
    sub.rerun_resumed_at = now
    sub.save()  # post_save wakes the claims of its queue (queue.announce_saved)
    signals.changed.send(sender=Submission, submission=sub)  # its entries leave the standings until re-scored
    return sub


@transaction.atomic
def resume(user, sub: Submission) -> Submission:
    sub = _locked(sub)
    _may_reevaluate(user, sub)
    challenge = sub.phase.challenge
    if not (challenge.remote_evaluation and challenge.allow_resuming_submissions):
        raise SubmissionError("forbidden", "this challenge does not allow resuming submissions", 403)
    if sub.status != S.FAILED:
        raise SubmissionError("bad_state", "only failed submissions can be resumed", 409)
    retention.require_kept(sub, "input_file")
    sub.status = S.RESUMING
    sub.rerun_resumed_at = timezone.now()
    sub.failure_reason = ""
    sub.expired_leases = 0  # a fresh set of attempts before "lost every time" fails it again
    sub.save()  # post_save wakes the claims of its queue (queue.announce_saved)
    return sub


@transaction.atomic
def hide(user, sub: Submission) -> Submission:
    """EvalAI's soft delete: gone from 'my submissions' and the leaderboard, never from the database."""
    sub = _locked(sub)
    _need_member_or_host(user, sub)
    sub.ignore_submission = True
    sub.is_public = False
    sub.save(update_fields=["ignore_submission", "is_public"])
    signals.changed.send(sender=Submission, submission=sub)
    return sub


@transaction.atomic
def set_public(user, sub: Submission, is_public: bool) -> Submission:
    sub = _locked(sub)
    host = _need_member_or_host(user, sub)
    phase = sub.phase
    if not phase.leaderboard_public and is_public:
        raise SubmissionError("forbidden", "this phase's leaderboard is private: submissions stay private", 403)
    if phase.is_submission_public and phase.leaderboard_public and not is_public and not host:
        raise SubmissionError("forbidden", "this phase keeps every submission on the public leaderboard", 403)
    if sub.ignore_submission and is_public:
        raise SubmissionError("bad_state", "a hidden submission cannot be made public", 409)
    sub.is_public = is_public
    sub.when_made_public = timezone.now() if is_public else None
    sub.save(update_fields=["is_public", "when_made_public"])
    if is_public and phase.is_restricted_to_select_one_submission:
        unpublish_others(sub)
    signals.changed.send(sender=Submission, submission=sub)  # the team's other ones too: one team, one refresh
    return sub


#: The longest method name and description a team may give (the API's submit form allows the same).
METHOD_NAME_MAX = 1000
METHOD_DESCRIPTION_MAX = 20000


@transaction.atomic
def describe(user, sub: Submission, *, method_name: str | None = None,
             method_description: str | None = None) -> Submission:  # fmt: skip
    """The submitting team renames its method or rewrites its description after submitting (EvalAI allows
    it). Only the team's members: hosts read the submission but may not put words in the team's mouth."""
    sub = _locked(sub)
    if not is_member(user, sub.participant_team):
        if is_host(user, sub.phase.challenge):
            raise SubmissionError("forbidden", "only the submitting team may change its method's name", 403)
        raise SubmissionError("not_found", "no such submission", 404)
    changed = []
    for field, value, limit in (
        ("method_name", method_name, METHOD_NAME_MAX),
        ("method_description", method_description, METHOD_DESCRIPTION_MAX),
    ):
        if value is None:
            continue
        if not isinstance(value, str):
            raise SubmissionError("invalid", f"{field} must be text", 400)
        value = value.strip()
        if "\x00" in value:
            raise SubmissionError("invalid", f"{field}: null characters are not allowed", 400)
        if len(value) > limit:
            raise SubmissionError("invalid", f"{field} is longer than {limit} characters", 400)
        setattr(sub, field, value)
        changed.append(field)
    if not changed:
        raise SubmissionError("invalid", "give method_name or method_description to change", 400)
    sub.save(update_fields=changed)
    signals.changed.send(sender=Submission, submission=sub)  # the leaderboards show the method's name
    return sub


@transaction.atomic
def mark(user, sub: Submission, *, baseline: bool | None = None, flagged: bool | None = None,
         verified: bool | None = None) -> Submission:  # fmt: skip
    """Host-only marks: baseline (always shown), flagged (hidden from the leaderboard), verified (badge)."""
    sub = _locked(sub)
    if not is_host(user, sub.phase.challenge):
        raise SubmissionError("forbidden", "only the challenge's hosts may mark submissions", 403)
    if baseline is not None:
        sub.is_baseline = baseline
    if flagged is not None:
        sub.is_flagged = flagged
    if verified is not None:
        sub.is_verified_by_host = verified
    sub.save(update_fields=["is_baseline", "is_flagged", "is_verified_by_host"])
    signals.changed.send(sender=Submission, submission=sub)
    return sub
