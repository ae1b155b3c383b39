"""A submission's evaluations: the current one (on the submission row) and the earlier ones a host's re-run
kept (:class:`~assay.server.submissions.models.SubmissionAttempt`), for the host's submission page, and the
note a team reads on its own list that the hosts re-ran a submission."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from assay.server.challenges.services.hosting import require_host

from ..models import Submission, SubmissionAttempt


@dataclass(frozen=True)
class Evaluation:
    number: int
    status: str
    status_display: str
    started_at: Any
    completed_at: Any
    execution_time: float | None
    output: Any
    failure_reason: str
    current: bool
    rerun_by: str = ""  # who asked for the evaluation after this one
    rerun_at: Any = None


def evaluations(user, sub: Submission) -> list[Evaluation]:
    """Every evaluation of ``sub``, the first first (hosts only: the earlier results are not cut by split)."""
    require_host(user, sub.phase.challenge)
    labels = dict(Submission.Status.choices)
    rows = [
        Evaluation(
            a.number,
            a.status,
            labels.get(a.status, a.status),
            a.started_at,
            a.completed_at,
            a.execution_time,
            a.output,
            a.failure_reason,
            False,
            a.rerun_by.get_username() if a.rerun_by else "",
            a.rerun_at,
        )  # fmt: skip
        for a in sub.attempts.select_related("rerun_by")
    ]
    rows.append(
        Evaluation(
            len(rows) + 1,
            sub.status,
            sub.get_status_display(),
            sub.started_at,
            sub.completed_at,
            sub.execution_time,
            sub.output,
            sub.failure_reason,
            True,
        )  # fmt: skip
    )
    return rows


def evaluation_number(sub: Submission) -> int:
    """Which evaluation of ``sub`` its current one is (1: the first; each host's re-run in place adds one)."""
    return sub.attempts.count() + 1


def note_reruns(subs: Iterable[Submission]) -> None:
    """Set ``host_reruns`` (how many times the hosts re-ran it) on each submission, in one query: the team's
    pages say that the hosts re-ran it, and when (``rerun_resumed_at``)."""
    subs = list(subs)
    counts = dict(
        SubmissionAttempt.objects.filter(submission__in=[s.pk for s in subs])
        .values("submission")
        .annotate(n=Count("id"))
        .values_list("submission", "n")
    )
    for s in subs:
        s.host_reruns = counts.get(s.pk, 0)
