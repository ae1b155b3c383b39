"""A team's view of its own submissions: the list, live status, queue position and remaining quota; and a
person's view across challenges (every team of theirs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import F, Func, OuterRef, Q, QuerySet, Subquery

from assay.server.challenges.models import Challenge, ChallengePhase, Participation
from assay.server.teams.services import participant_teams_of

from ..models import Submission
from . import queue
from .errors import SubmissionError
from .page_rows import shared_relations
from .queue import WAITING
from .submit import remaining


def team_submissions(participation: Participation, phase: ChallengePhase | None = None) -> QuerySet[Submission]:
    """The team's submissions to the challenge, newest first, without the ones it hid."""
    qs = Submission.objects.filter(
        phase__challenge_id=participation.challenge_id,
        participant_team_id=participation.team_id,
        ignore_submission=False,
    )
    if phase is not None:
        qs = qs.filter(phase=phase)
    return shared_relations(qs).order_by("-submitted_at", "-id")


@dataclass(frozen=True)
class MineFilter:
    """What "my submissions" is narrowed to (None: any): a challenge id, a phase id, a status."""

    challenge: int | None = None
    phase: int | None = None
    status: str | None = None


#: The query parameters :func:`mine_filter` reads (the web page's form and ``GET /api/v1/me/submissions``).
FILTER_PARAMETERS = ("challenge", "phase", "status")


def id_filter(name: str, text: str | None) -> int | None:
    """The id filter ``name`` given as ``text`` (empty: None, any), or SubmissionError (400) naming it."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
        return int(text)
    raise SubmissionError("invalid", f"{name} must be a {name} id (a positive whole number), not {text[:40]!r}", 400)


def status_filter(text: str | None) -> str | None:
    """The status filter given as ``text`` (empty: None, any), or SubmissionError (400) listing the statuses:
    the one check of a status filter, for "my submissions" and the host's submissions page alike."""
    status = (text or "").strip()
    if status and status not in Submission.Status.values:
        raise SubmissionError(
            "invalid", f"status must be one of {', '.join(Submission.Status.values)}, not {status[:40]!r}", 400
        )
    return status or None


def mine_filter(params: Mapping[str, str]) -> MineFilter:
    """The filters in ``params`` (query parameters; empty means any), or SubmissionError (400) naming the bad
    one and what it takes. An id nobody may see is no error: it matches nothing, as a missing one would."""
    return MineFilter(
        challenge=id_filter("challenge", params.get("challenge")),
        phase=id_filter("phase", params.get("phase")),
        status=status_filter(params.get("status")),
    )


def user_submissions(user, filters: MineFilter | None = None) -> QuerySet[Submission]:
    """Every submission of the user's teams (active memberships) in every challenge, newest first, without
    the ones a team hid: what "my submissions" means once a person takes part in several challenges;
    ``filters`` (:func:`mine_filter`) narrow it."""
    qs = Submission.objects.filter(
        participant_team__in=participant_teams_of(user).values("pk"), ignore_submission=False
    )
    if filters is not None:
        if filters.challenge is not None:
            qs = qs.filter(phase__challenge_id=filters.challenge)
        if filters.phase is not None:
            qs = qs.filter(phase_id=filters.phase)
        if filters.status is not None:
            qs = qs.filter(status=filters.status)
    return shared_relations(qs).order_by("-submitted_at", "-id")


def mine_choices(user) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The challenges and the phases (``challenge: phase``) the user's teams submitted to: what the "my
    submissions" filters offer. One query."""
    rows = (
        user_submissions(user)
        .order_by()
        .values_list("phase__challenge_id", "phase__challenge__title", "phase_id", "phase__name")
        .distinct()
    )
    challenges: dict[int, str] = {}
    phases: dict[int, str] = {}
    for challenge_id, title, phase_id, name in rows:
        challenges[challenge_id] = title
        phases[phase_id] = f"{title}: {name}"
    return sorted(challenges.items(), key=lambda c: c[1].lower()), sorted(phases.items(), key=lambda p: p[1].lower())


def queue_position(sub: Submission) -> int | None:
    """1 = next to be evaluated in its queue; None once a worker has it (or it is done)."""
    return queue_positions([sub])[sub.pk]


def queue_positions(subs: Iterable[Submission]) -> dict[int, int | None]:
    """Each submission's place in its queue (1: next), or None once a worker has it (or it is done, or its
    challenge awaits an administrator's approval): one statement per queue the waiting ones are in, each
    waiting row's count of the offered jobs ahead of it a subquery of it, so a page asks once, not per row."""
    positions: dict[int, int | None] = {}
    by_queue: dict[str, list[int]] = {}
    for sub in subs:
        positions[sub.pk] = None
        if sub.status in WAITING and not queue.waiting_for(sub):  # else not in line yet (approval)
            by_queue.setdefault(sub.queue_name, []).append(sub.pk)
    for queue_name, ids in by_queue.items():
        ahead = Submission.objects.filter(queue_name=queue_name, status__in=WAITING).filter(
            Q(submitted_at__lt=OuterRef("submitted_at"))
            | Q(submitted_at=OuterRef("submitted_at"), id__lt=OuterRef("pk"))
        )
        count = queue.offered(queue_name, ahead).order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
        rows = Submission.objects.filter(pk__in=ids).annotate(ahead=Subquery(count)).values_list("pk", "ahead")
        positions.update((pk, ahead + 1) for pk, ahead in rows)
    return positions


def any_in_progress(subs) -> bool:
    return any(s.status in Submission.IN_PROGRESS for s in subs)


def quotas(challenge: Challenge, participation: Participation, phases=None) -> list[tuple[ChallengePhase, dict]]:
    """Remaining submissions per phase (EvalAI's remaining_submissions numbers)."""
    phases = phases if phases is not None else challenge.phases.all()
    return [(phase, remaining(phase, participation.team)) for phase in phases]
