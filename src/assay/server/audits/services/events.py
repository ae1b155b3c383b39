"""Submission events on the evidence trail of audited phases: ``submitted`` and a failed ``evaluated``.

A successful evaluation is recorded by :func:`.summaries.on_scored`; these receivers add the moment the
file arrived and an evaluation that failed. Both return at once for a phase without ``audit`` — when the
submission carries its phase already (as a submit does), without a query — so ordinary challenges pay
nothing. A failure to record is logged, never raised: the trail must not undo a submission.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from assay.server.challenges.models import ChallengePhase
from assay.server.submissions.models import Submission

from ..models import TrailRecord
from . import trail

log = logging.getLogger("assay.server")
ACTOR = "assay"
S = Submission.Status


def _audited(submission: Submission) -> bool:
    if Submission.phase.is_cached(submission):
        return bool(submission.phase.audit)
    return bool(ChallengePhase.objects.filter(pk=submission.phase_id).values_list("audit", flat=True).first())


def _actor(submission: Submission) -> str:
    user = submission.created_by if Submission.created_by.is_cached(submission) else None
    if user is not None:
        return user.get_username()
    from django.contrib.auth import get_user_model

    name = get_user_model().objects.filter(pk=submission.created_by_id).values_list("username", flat=True).first()
    return name or ACTOR


def _submitted_payload(submission: Submission) -> dict[str, Any]:
    return {
        "number": submission.submission_number,
        "team_id": submission.participant_team_id,
        "file_sha256": submission.input_file_sha256 or None,
        "file_size": submission.input_file_size,
        "image_digest": submission.image_digest or None,
    }


def on_submission_saved(sender, *, instance: Submission, created: bool, update_fields=None, **kwargs) -> None:
    """``post_save`` of a submission: a new one with its file (or a resumable upload's file arriving)."""
    arrived = created and instance.status != S.SUBMITTING
    completed_upload = (
        not created
        and update_fields is not None
        and "status" in update_fields
        and "input_file_sha256" in update_fields
        and instance.status == S.SUBMITTED
    )
    if not (arrived or completed_upload) or kwargs.get("raw"):
        return
    try:
        if not _audited(instance):
            return
        trail.append(instance, "submitted", _actor(instance), _submitted_payload(instance))  # its own savepoint
    except Exception:
        log.exception("audit: recording the submission of %s on its trail failed", instance.pk)


def on_changed(sender, *, submission: Submission, **kwargs) -> None:
    """``submissions.signals.changed``: an evaluation that failed is recorded once, with its reason."""
    if submission.status != S.FAILED or submission.completed_at is None:
        return
    try:
        if not _audited(submission):
            return
        completed_at = submission.completed_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
        if TrailRecord.objects.filter(
            submission_id=submission.pk, kind="evaluated", payload__completed_at=completed_at
        ).exists():
            return  # a later change of the failed submission (its visibility, a flag) is not a new evaluation
        payload = {
            "status": submission.status,
            "reason": (submission.failure_reason or "")[:500],
            "completed_at": completed_at,
        }
        trail.append(submission, "evaluated", ACTOR, payload)
    except Exception:
        log.exception("audit: recording the failed evaluation of submission %s on its trail failed", submission.pk)
