"""The hosts' release of an approved audit, and its retraction.

Audit results stay private (hosts and auditors) until the challenge's hosts — the data owner — release
them; then the submitting team reads the summary, report, manifest and trail too. A release can be
retracted with a reason that readers are shown; the row is kept, never deleted, and a retracted release
stays retracted (a corrected audit is a new submission). The release keeps the manifest made (and signed)
at that moment, its trail head the ``released`` record: every later download is that document, byte for
byte.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from assay.server.submissions.models import Submission

from ..models import AnswerSet, Release
from . import manifest as manifests
from . import trail
from .access import AuditRefusal, may_release, release_of, require

RELEASE_MESSAGE = "Only the challenge's hosts release or retract its audit results."
MAX_REASON = 4000


def release(actor, submission: Submission) -> Release:
    """Release the audit of ``submission``: its answers must have been approved."""
    require(may_release, actor, submission, RELEASE_MESSAGE)
    try:
        with transaction.atomic():
            answer_set = AnswerSet.objects.select_for_update().filter(submission=submission).first()
            state = answer_set.state if answer_set is not None else "not answered"
            if state != AnswerSet.State.APPROVED:
                raise AuditRefusal(
                    "not_approved",
                    f"Only an approved audit is released; this one is {str(state).replace('_', ' ')}.",
                    409,
                )
            existing = release_of(submission)
            if existing is not None:
                raise AuditRefusal("conflict", f"The audit was already released ({existing.state}).", 409)
            row = Release.objects.create(submission=submission, released_by=actor, released_at=timezone.now())
            trail.append(submission, "released", actor.username, {})
            row.manifest = manifests.build_manifest(submission)
            row.save(update_fields=["manifest"])
    except IntegrityError:
        raise AuditRefusal("conflict", "The audit was released a moment ago by another host.", 409) from None
    return row


def retract(actor, submission: Submission, reason: Any) -> Release:
    """Retract a standing release, saying why (shown to readers; the release row is kept)."""
    require(may_release, actor, submission, RELEASE_MESSAGE)
    if not isinstance(reason, str) or not reason.strip():
        raise AuditRefusal("invalid", "A retraction needs a reason; readers are shown it.", 400)
    reason = reason.strip()
    if len(reason) > MAX_REASON or "\x00" in reason:
        raise AuditRefusal("invalid", f"The reason is at most {MAX_REASON} characters of text.", 400)
    with transaction.atomic():
        row = Release.objects.select_for_update().filter(submission=submission).first()
        if row is None:
            raise AuditRefusal("not_released", "Nothing to retract: the audit was never released.", 409)
        if row.state == Release.State.RETRACTED:
            raise AuditRefusal("conflict", "The release was already retracted.", 409)
        row.state = Release.State.RETRACTED
        row.retracted_by = actor
        row.retracted_at = timezone.now()
        row.retraction_reason = reason
        row.save(update_fields=["state", "retracted_by", "retracted_at", "retraction_reason"])
        trail.append(submission, "retracted", actor.username, {"reason": reason[:1000]})
    return row
