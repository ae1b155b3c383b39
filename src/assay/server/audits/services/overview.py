"""One submission's audit as a reader may see it: the state of the answers, the reviews' decisions, the
release (with a retraction's reason) and — when :func:`access.may_read_audit` allows — the summary."""

from __future__ import annotations

from typing import Any

from assay.server.submissions.models import Submission

from ..models import AuditSummary, Release
from .access import (
    may_answer,
    may_read_audit,
    may_read_cases,
    may_release,
    may_review,
    release_of,
    require_visible,
)
from .answers import answer_set_of, questionnaire_of

#: The state of an audit whose team has not saved any answer yet.
NOT_STARTED = "not_started"


def release_document(release: Release | None) -> dict[str, Any] | None:
    if release is None:
        return None
    return {
        "state": release.state,
        "released_at": release.released_at,
        "released_by": release.released_by.username,
        "retracted_at": release.retracted_at,
        "retraction_reason": release.retraction_reason if release.state == Release.State.RETRACTED else "",
    }


def overview(user, submission: Submission) -> dict[str, Any]:
    """What the audit of ``submission`` is at, for ``user`` (404 refusal if they may not see it)."""
    require_visible(user, submission)
    answer_set = answer_set_of(submission)
    questionnaire = questionnaire_of(submission, answer_set)
    readable = may_read_audit(user, submission)
    summary = AuditSummary.objects.filter(submission=submission).first() if readable else None
    reviews = list(answer_set.reviews.select_related("reviewer").order_by("round")) if answer_set else []
    return {
        "submission": submission.pk,
        "phase": submission.phase_id,
        "challenge": submission.phase.challenge_id,
        "state": answer_set.state if answer_set else NOT_STARTED,
        "questionnaire": {"id": questionnaire.schema.get("id"), "version": questionnaire.version}
        if questionnaire
        else None,
        "second_review_required": bool(answer_set and answer_set.second_review_required),
        "submitted_at": answer_set.submitted_at if answer_set else None,
        "reviews": [
            {
                "round": r.round,
                "reviewer": r.reviewer.username,
                "decision": r.decision or None,
                "decided_at": r.decided_at,
            }
            for r in reviews
        ],
        "release": release_document(release_of(submission)),
        "summary": summary.document if summary else None,
        "summary_computed_at": summary.computed_at if summary else None,
        "may": {
            "answer": may_answer(user, submission),
            "review": may_review(user, submission),
            "release": may_release(user, submission),
            "read_cases": may_read_cases(user, submission),
            "read_results": readable,
        },
    }
