"""What hosts do to their challenge's submissions from the web: list and filter, re-run, mark, export.

Every function checks that the user hosts the challenge first (:func:`require_host`, the same rule as
the rest of hosting); the web views only translate forms to these calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from assay.server.challenges.models import Challenge, ChallengePhase
from assay.server.challenges.services.hosting import HostingError, csv_rows, require_host
from assay.server.teams.services import ActiveMembersOf

from ..models import Submission
from . import lifecycle
from .errors import SubmissionError
from .my_submissions import id_filter, status_filter
from .page_rows import shared_relations
from .result_access import ResultReader

S = Submission.Status

# --- listing and actions --------------------------------------------------------------------------------

#: The host page's "Marked" filter: its values and what each keeps.
FLAGS = {
    "flagged": Q(is_flagged=True),
    "baseline": Q(is_baseline=True),
    "verified": Q(is_verified_by_host=True),
    "hidden": Q(ignore_submission=True),
    "public": Q(is_public=True),
}


def host_submissions(challenge: Challenge, filters: dict[str, str]) -> QuerySet[Submission]:
    """The challenge's submissions, newest first, narrowed by ``phase``, ``status``, ``team`` (name
    contains), ``flag`` (flagged|baseline|verified|hidden|public). A malformed phase, status or flag is a
    SubmissionError (400) naming it, by the same checks as "my submissions" (:func:`mine_filter`)."""
    phase = id_filter("phase", filters.get("phase"))
    status = status_filter(filters.get("status"))
    flag = (filters.get("flag") or "").strip()
    if flag and flag not in FLAGS:
        raise SubmissionError("invalid", f"flag must be one of {', '.join(FLAGS)}, not {flag[:40]!r}", 400)
    qs = shared_relations(Submission.objects.filter(phase__challenge=challenge))
    if phase is not None:
        qs = qs.filter(phase_id=phase)
    if status is not None:
        qs = qs.filter(status=status)
    team = (filters.get("team") or "").strip()[:100]
    if team:
        qs = qs.filter(Q(participant_team__name__icontains=team) | Q(created_by__username__icontains=team))
    if flag:
        qs = qs.filter(FLAGS[flag])
    return qs.order_by("-submitted_at", "-id")


RERUNNABLE = (S.FINISHED, S.FAILED, S.PARTIALLY_EVALUATED)


def bulk_rerun(user, challenge: Challenge, phase: ChallengePhase | None = None) -> int:
    """Re-run every finished or failed, not hidden submission (after the host changed the script)."""
    require_host(user, challenge)
    qs = Submission.objects.filter(phase__challenge=challenge, status__in=RERUNNABLE, ignore_submission=False)
    if phase is not None:
        qs = qs.filter(phase=phase)
    count = 0
    for sub in qs.order_by("submitted_at", "id"):
        try:
            with transaction.atomic():
                lifecycle.rerun(user, sub)
            count += 1
        except SubmissionError:
            continue
    return count


def host_action(user, sub: Submission, action: str) -> Submission:
    """One host action on one submission: rerun (rerun_copy), cancel, flag/unflag, baseline/unbaseline,
    verify/unverify, hide."""
    require_host(user, sub.phase.challenge)
    marks = {
        "flag": {"flagged": True},
        "unflag": {"flagged": False},
        "baseline": {"baseline": True},
        "unbaseline": {"baseline": False},
        "verify": {"verified": True},
        "unverify": {"verified": False},
    }
    if action in marks:
        return lifecycle.mark(user, sub, **marks[action])
    if action == "rerun":  # the same submission evaluated again, its earlier evaluation kept as an attempt
        return lifecycle.rerun(user, sub)
    if action == "rerun_copy":  # the host asked for a copy: a new submission of the team, the old one cancelled
        return lifecycle.rerun(user, sub, as_new=True)
    if action == "cancel":
        return lifecycle.cancel(user, sub)
    if action == "hide":
        return lifecycle.hide(user, sub)
    raise HostingError("bad_action", f"{action!r} is not an action on submissions")


def script_errors(challenge: Challenge, limit: int = 50) -> QuerySet[Submission]:
    """The latest failed evaluations with their reasons: where a broken evaluation script shows."""
    return (
        Submission.objects.filter(phase__challenge=challenge, status=S.FAILED)
        .exclude(failure_reason="")
        .select_related("phase", "participant_team")
        .order_by("-completed_at", "-id")[:limit]
    )


# --- exports -----------------------------------------------------------------------------------------


def submissions_csv(user, challenge: Challenge, phase: ChallengePhase | None = None) -> Iterator[str]:
    require_host(user, challenge)
    qs = shared_relations(Submission.objects.filter(phase__challenge=challenge))
    if phase is not None:
        qs = qs.filter(phase=phase)
    reader = ResultReader(user)  # a host sees every split; the one rule all the same
    members_of = ActiveMembersOf()

    def rows() -> Iterator[list[Any]]:
        yield [
            "id", "phase", "team", "members", "emails", "created_by", "status", "submission_number", "submitted_at",
            "execution_time", "is_public", "is_baseline", "is_flagged", "is_verified_by_host", "hidden",
            "method_name", "method_description", "project_url", "publication_url", "result", "failure_reason",
        ]  # fmt: skip
        for s in qs.order_by("submitted_at", "id").iterator(chunk_size=500):
            members = members_of(s.participant_team)
            yield [
                s.pk, s.phase.codename, s.participant_team.name, " ".join(m.get_username() for m in members),
                " ".join(m.email for m in members), s.created_by.get_username(), s.status, s.submission_number,
                s.submitted_at.isoformat(), s.execution_time, s.is_public, s.is_baseline, s.is_flagged,
                s.is_verified_by_host, s.ignore_submission, s.method_name, s.method_description, s.project_url,
                s.publication_url, reader.result(s) if s.output else "", s.failure_reason,
            ]  # fmt: skip

    return csv_rows(rows())
