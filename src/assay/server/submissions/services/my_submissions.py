"""A team's view of its own submissions: the list, live status, queue position and remaining quota; and a
person's view across challenges (every team of theirs)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from assay.server.challenges.models import Challenge, ChallengePhase, Participation
from assay.server.teams.services import participant_teams_of

from ..models import Submission
from . import queue
from .queue import WAITING
from .submit import remaining


def team_submissions(participation: Participation, phase: ChallengePhase | None = None) -> QuerySet[Submission]:
    """The team's submissions to the challenge, newest first, without the ones it hid."""
    qs = Submission.objects.filter(
        phase__challenge_id=participation.challenge_id,
        participant_team_id=participation.team_id,
        ignore_submission=False,
    ).select_related("phase__challenge", "created_by")
    if phase is not None:
        qs = qs.filter(phase=phase)
    return qs.order_by("-submitted_at", "-id")


def user_submissions(user) -> QuerySet[Submission]:
    """Every submission of the user's teams (active memberships) in every challenge, newest first, without
    the ones a team hid: what "my submissions" means once a person takes part in several challenges."""
    return (
        Submission.objects.filter(participant_team__in=participant_teams_of(user).values("pk"), ignore_submission=False)
        .select_related("phase__challenge", "participant_team", "created_by")
        .order_by("-submitted_at", "-id")
    )


def queue_position(sub: Submission) -> int | None:
    """1 = next to be evaluated in its queue; None once a worker has it (or it is done)."""
    if sub.status not in WAITING or queue.waiting_for(sub):
        return None  # not in line yet: its challenge awaits an administrator's approval
    ahead = Submission.objects.filter(queue_name=sub.queue_name, status__in=WAITING).filter(
        Q(submitted_at__lt=sub.submitted_at) | Q(submitted_at=sub.submitted_at, id__lt=sub.pk)
    )
    return queue.offered(sub.queue_name, ahead).count() + 1


def any_in_progress(subs) -> bool:
    return any(s.status in Submission.IN_PROGRESS for s in subs)


def quotas(challenge: Challenge, participation: Participation, phases=None) -> list[tuple[ChallengePhase, dict]]:
    """Remaining submissions per phase (EvalAI's remaining_submissions numbers)."""
    phases = phases if phases is not None else challenge.phases.all()
    return [(phase, remaining(phase, participation.team)) for phase in phases]
