"""A host's numbers for a challenge: submissions per day, teams and participants, failures by reason, the
median evaluation time. Hosts only (:func:`~assay.server.challenges.services.hosting.require_host`).

Cheap by construction: each figure is one grouped query (six in all, whatever the number of
submissions), and the median is read at its rank from an ordered index range, not by loading every
duration into Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Substr, TruncDate

from assay.server.challenges.models import Challenge, Participation
from assay.server.challenges.services.hosting import require_host
from assay.server.teams.models import ParticipantTeamMember, active_membership

from ..models import Submission

S = Submission.Status
#: How much of a failure reason groups failures together (the first line is usually the reason).
REASON_CHARS = 160
#: The most frequent reasons shown; the rest are counted together.
TOP_REASONS = 10


@dataclass(frozen=True)
class Day:
    day: dt.date
    submissions: int
    failed: int


@dataclass(frozen=True)
class Reason:
    reason: str
    count: int


@dataclass
class ChallengeStatistics:
    days: list[Day] = field(default_factory=list)
    submissions: int = 0
    failed: int = 0
    teams_registered: int = 0
    teams_waiting: int = 0
    participants: int = 0
    failure_reasons: list[Reason] = field(default_factory=list)
    other_failures: int = 0
    median_evaluation_seconds: float | None = None
    evaluated: int = 0


def _duration():
    return ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())


def _median_seconds(challenge: Challenge) -> tuple[float | None, int]:
    """The median of finished evaluations' run times, and how many there are."""
    done = Submission.objects.filter(
        phase__challenge=challenge,
        status__in=(S.FINISHED, S.PARTIALLY_EVALUATED),
        started_at__isnull=False,
        completed_at__isnull=False,
    )
    count = done.count()
    if not count:
        return None, 0
    ordered = done.annotate(took=_duration()).order_by("took").values_list("took", flat=True)
    middle = list(ordered[(count - 1) // 2 : count // 2 + 1])  # one value, or the two around the middle
    seconds = [d.total_seconds() if isinstance(d, dt.timedelta) else float(d) / 1e6 for d in middle]
    return sum(seconds) / len(seconds), count


def challenge_statistics(user, challenge: Challenge) -> ChallengeStatistics:
    """The host's figures for ``challenge`` (hidden submissions included: the host sees every one)."""
    require_host(user, challenge)
    subs = Submission.objects.filter(phase__challenge=challenge)
    stats = ChallengeStatistics()
    per_day = (
        subs.annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(n=Count("id"), failed=Count("id", filter=Q(status=S.FAILED)))
        .order_by("day")
    )
    stats.days = [Day(row["day"], row["n"], row["failed"]) for row in per_day]
    stats.submissions = sum(d.submissions for d in stats.days)
    stats.failed = sum(d.failed for d in stats.days)
    registered = Participation.objects.filter(challenge=challenge).aggregate(
        approved=Count("id", filter=Q(status=Participation.Status.APPROVED)),
        pending=Count("id", filter=Q(status=Participation.Status.PENDING)),
    )
    stats.teams_registered, stats.teams_waiting = registered["approved"], registered["pending"]
    stats.participants = (
        ParticipantTeamMember.objects.filter(
            active_membership(),
            team__participations__challenge=challenge,
            team__participations__status=Participation.Status.APPROVED,
        )
        .values("user_id")
        .distinct()
        .count()
    )
    reasons = (
        subs.filter(status=S.FAILED)
        .annotate(reason=Substr("failure_reason", 1, REASON_CHARS))
        .values("reason")
        .annotate(n=Count("id"))
        .order_by("-n", "reason")
    )
    stats.failure_reasons = [
        Reason(row["reason"].strip() or "(no reason given)", row["n"]) for row in reasons[:TOP_REASONS]
    ]
    stats.other_failures = stats.failed - sum(r.count for r in stats.failure_reasons)
    stats.median_evaluation_seconds, stats.evaluated = _median_seconds(challenge)
    return stats


def as_dict(stats: ChallengeStatistics) -> dict:
    """The figures as the API answers them."""
    return {
        "submissions": stats.submissions,
        "failed": stats.failed,
        "teams_registered": stats.teams_registered,
        "teams_waiting": stats.teams_waiting,
        "participants": stats.participants,
        "median_evaluation_seconds": stats.median_evaluation_seconds,
        "evaluated": stats.evaluated,
        "per_day": [{"day": d.day, "submissions": d.submissions, "failed": d.failed} for d in stats.days],
        "failure_reasons": [{"reason": r.reason, "count": r.count} for r in stats.failure_reasons],
        "other_failures": stats.other_failures,
    }
