"""Creating a submission, with every check EvalAI makes at submit time — race-free.

Checks that need no lock run first (dates, pause, visibility, allow-lists, team, approval, bans,
file type, meta attributes). The file is then stored, and the counting checks (concurrency cap,
total/month/day limits) run again inside one transaction that holds the team's participation row
locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions take the single
write lock at BEGIN), so concurrent submits cannot both pass a limit. A refused submit leaves no
row and no file behind.
"""

from __future__ import annotations

import datetime as dt
import functools
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from assay.server.challenges.models import ChallengePhase, Participation
from assay.server.challenges.services.roles import is_host, participation_of, team_emails
from assay.server.prepared import Prepared, save_new
from assay.server.storage import ContentWriter
from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

from .. import signals
from ..models import Submission
from . import images
from .errors import SubmissionError
from .meta import normalise_meta
from .tokens import queue_name

S = Submission.Status
# A file this small is stored before the limits are counted (once, under the lock): refused, it is
# removed again at less cost than a second count; a larger one is refused before it is stored.
SMALL_FILE_BYTES = 1024 * 1024


@dataclass
class SubmissionFields:
    """What a participant may set when submitting."""

    is_public: bool | None = None
    method_name: str = ""
    method_description: str = ""
    project_url: str = ""
    publication_url: str = ""
    meta: Any = None


def allowed_extension(phase: ChallengePhase, file_name: str) -> bool:
    """The phase's file types; a docker-based challenge takes images (and code bundles) whatever its phases list."""
    if phase.challenge.is_docker_based:
        return images.allowed_name(file_name, phase.challenge)
    return file_name.lower().endswith(_file_types(phase.allowed_submission_file_types))


@functools.lru_cache(maxsize=256)
def _file_types(allowed: str) -> tuple[str, ...]:
    """The extensions a phase's ``allowed_submission_file_types`` names (the bundle's rule), kept per value:
    every submit checks them."""
    from assay.bundle.model import Phase as PhaseConfig

    return tuple(PhaseConfig.model_construct(allowed_submission_file_types=allowed).file_types)


def submit(
    user,
    phase: ChallengePhase,
    file: IO[bytes] | None,
    file_name: str,
    fields: SubmissionFields,
    *,
    participation: Participation | None = None,
    stored: tuple[str, str, int] | None = None,
) -> Submission:
    """Create a submitted (queued) submission for ``user``'s team, or raise :class:`SubmissionError`.

    ``participation``: what :func:`gate` answered, when the caller asked it already (a view asks who may
    submit before it reads the body, so a refused role gets its 403 whatever it sent). ``stored``: (name,
    sha256, size) of a file already in storage that ``file`` reads (a registered model's version): it is
    checked like an upload and named by the submission, never copied."""
    participation = participation or gate(user, phase)
    if file is None:
        raise SubmissionError("file_required", "a submission file is required", 400)
    size = getattr(file, "size", None)
    file_name = clean_file_name(phase, file_name, size)
    meta = normalise_meta(phase.submission_meta_attributes, fields.meta)
    if phase.challenge.is_docker_based or size is None or size > SMALL_FILE_BYTES:
        check_counts(phase, participation.team)  # early, friendly answer before a large file is stored
    image_digest = (
        images.check_submission(phase, file, file_name, team_id=participation.team_id)
        if phase.challenge.is_docker_based
        else ""
    )
    writer = ContentWriter()
    try:
        name, digest, size = stored or writer.save_seekable("submissions", file_name, file)
        return create(
            user,
            phase,
            participation,
            fields,
            meta,
            file_name=file_name,
            status=S.SUBMITTED,
            input_file=name,
            input_file_sha256=digest,
            input_file_size=size,
            image_digest=image_digest,
        )
    except BaseException:
        writer.rollback()
        raise


def clean_file_name(phase: ChallengePhase, file_name: str, size: int | None) -> str:
    """The client's file name reduced to its last part, checked against the phase's types and the size cap."""
    file_name = posixpath.basename((file_name or "submission").replace("\\", "/"))[:255] or "submission"
    if not allowed_extension(phase, file_name):
        docker = phase.challenge.is_docker_based
        allowed = images.describe_accepted(phase.challenge) if docker else phase.allowed_submission_file_types
        raise SubmissionError(
            "file_type_not_allowed", f"{file_name!r} is not an allowed file type for this phase ({allowed})", 400
        )
    if size is not None and (size < 0 or size > settings.SUBMISSION_MAX_BYTES):
        raise SubmissionError(
            "file_too_large", f"the file is {size} bytes; the limit is {settings.SUBMISSION_MAX_BYTES}", 413
        )
    return file_name


def create(
    user,
    phase: ChallengePhase,
    participation: Participation,
    fields: SubmissionFields,
    meta: list | None,
    *,
    file_name: str,
    status: str,
    **file_fields,
) -> Submission:
    """Insert the submission once the counting limits hold, with the team's registration locked.

    Shared by :func:`submit` (the file is already stored: ``submitted``) and resumable uploads (the
    row is reserved as ``submitting`` before the file exists, so it counts at once, as in EvalAI).
    """
    with transaction.atomic():
        number = lock_numbering(phase, participation.team, participation_id=participation.pk).take(limits=True)
        submission = Submission(
            phase=phase,
            participant_team=participation.team,
            created_by=user,
            status=status,
            input_file_name=file_name[:255],
            method_name=fields.method_name[:1000],
            method_description=fields.method_description,
            project_url=fields.project_url[:1000],
            publication_url=fields.publication_url[:1000],
            submission_metadata=meta,
            queue_name=queue_name(phase.challenge),
            submission_number=number,
            **file_fields,
        )
        _apply_visibility(submission, phase, fields.is_public)
        save_new(submission)  # save()'s INSERT and signals, the statement built once: every submit runs it
        if submission.is_public and phase.is_restricted_to_select_one_submission:
            unpublish_others(submission)
            # the entry it replaces leaves the public rows now
            signals.changed.send(sender=Submission, submission=submission)
    return submission


def gate(user, phase: ChallengePhase) -> Participation:
    """Every check that needs no lock: dates, pause, visibility, allow-list, team, approval, bans.

    Hosts pass the participant-only checks, so whether ``user`` is one is asked only when one of them
    would refuse (or no team is registered): a participant's submit needs no host query."""
    host: list[bool] = []

    def is_host_here() -> bool:
        if not host:
            host.append(is_host(user, phase.challenge))
        return host[0]

    return _gate(user, phase, is_host_here)


def _gate(user, phase: ChallengePhase, host: Callable[[], bool]) -> Participation:
    challenge = phase.challenge
    now = timezone.now()
    if not (challenge.start_date <= now <= challenge.end_date) and not host():
        raise SubmissionError("challenge_not_active", "the challenge is not accepting submissions now", 406)
    if not (phase.start_date <= now <= phase.end_date) and not host():
        raise SubmissionError("phase_not_active", f"phase {phase.name!r} is not open for submissions now", 406)
    if (challenge.is_submission_paused or phase.is_submission_paused) and not host():
        raise SubmissionError("submissions_paused", "the host has paused submissions", 406)
    if not phase.is_public and not host():
        raise SubmissionError("phase_not_public", "this phase is not open to participants", 403)
    allowed = [e.lower() for e in phase.allowed_email_ids or []]
    if allowed and (user.email or "").lower() not in allowed and not host():
        raise SubmissionError("email_not_allowed", "your e-mail address may not submit to this phase", 403)
    participation = participation_of(user, challenge)
    if participation is None and host():
        participation = _host_participation(user, phase)
    if participation is None:
        raise SubmissionError("not_participating", "your team has not registered for this challenge", 403)
    if participation.status != Participation.Status.APPROVED and not host():
        raise SubmissionError("team_not_approved", "the host has not approved your team for this challenge yet", 403)
    if participation.terms_accepted_at is None and not host():
        raise SubmissionError(
            "terms_not_accepted",
            "your team has not accepted this challenge's terms and conditions yet (see the challenge's page)",
            403,
        )
    banned = {e.lower() for e in challenge.banned_email_ids or []}
    if banned and banned & set(team_emails(participation.team)):  # no query without a ban list
        raise SubmissionError("team_banned", "a member of your team is banned from this challenge", 403)
    return participation


def _host_participation(user, phase: ChallengePhase) -> Participation:
    """Hosts test-submit as their own participant team, as EvalAI's Host_<n>_Team lets them."""
    challenge = phase.challenge
    name = f"Hosts of {challenge.host_team.name} #{challenge.pk}"[:100]
    team, _ = ParticipantTeam.objects.get_or_create(name=name, defaults={"created_by": user})
    ParticipantTeamMember.objects.get_or_create(team=team, user=user)
    participation, _ = Participation.objects.get_or_create(
        challenge=challenge, team=team, defaults={"status": Participation.Status.APPROVED}
    )
    return participation


@dataclass
class _Usage:
    """A team's submissions to a phase, in one query: in progress; counted (EvalAI's rule: never the
    cancelled, the failed unless the phase counts them) in all, this month and today (UTC); and the
    highest submission number given (whatever its status), the next one's predecessor."""

    in_progress: int
    total: int
    month: int
    day: int
    last_number: int
    midnight: dt.datetime


# The usage query compiled once per database and failure rule (see assay.server.prepared), run with the
# phase, team and dates: the ORM took longer to build this aggregate than the database to run it.
_USAGE: dict[tuple[str, bool], Prepared] = {}
_PHASE, _TEAM = -101, -102  # stand-ins: no row has a negative id, no submission is that old
_MONTH, _DAY = dt.datetime(1901, 1, 1, tzinfo=dt.UTC), dt.datetime(1902, 1, 1, tzinfo=dt.UTC)


def _usage_query(count_failed: bool) -> Prepared:
    key = (connection.alias, count_failed)
    if key not in _USAGE:
        counted = ~Q(status__in=[S.CANCELLED] if count_failed else [S.CANCELLED, S.FAILED])
        qs = (
            Submission.objects.filter(phase_id=_PHASE, participant_team_id=_TEAM)
            .order_by()
            .values("participant_team_id")
            .annotate(
                in_progress=Count("pk", filter=Q(status__in=Submission.IN_PROGRESS)),
                total=Count("pk", filter=counted),
                month=Count("pk", filter=counted & Q(submitted_at__gte=_MONTH)),
                day=Count("pk", filter=counted & Q(submitted_at__gte=_DAY)),
                last_number=Max("submission_number"),
            )
            .values_list("in_progress", "total", "month", "day", "last_number")
        )
        adapt = connection.ops.adapt_datetimefield_value
        _USAGE[key] = Prepared(qs, phase=_PHASE, team=_TEAM, month=adapt(_MONTH), day=adapt(_DAY))
    return _USAGE[key]


def _usage(phase: ChallengePhase, team) -> _Usage:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    adapt = connection.ops.adapt_datetimefield_value
    found = _usage_query(phase.count_failed_submissions).rows(
        phase=phase.pk, team=team.pk, month=adapt(midnight.replace(day=1)), day=adapt(midnight)
    )
    in_progress, total, month, day, last_number = found[0] if found else (0, 0, 0, 0, 0)
    return _Usage(in_progress, total, month, day, last_number or 0, midnight)


# The team's submissions to a phase: how many, how many in progress, the highest number (compiled once per
# database, as _USAGE): what every submit needs, without the counts that only a limit near its end needs.
_HISTORY: dict[str, Prepared] = {}


def _history(phase: ChallengePhase, team) -> tuple[int, int, int]:
    if connection.alias not in _HISTORY:
        qs = (
            Submission.objects.filter(phase_id=_PHASE, participant_team_id=_TEAM)
            .order_by()
            .values("participant_team_id")
            .annotate(
                rows=Count("pk"),
                in_progress=Count("pk", filter=Q(status__in=Submission.IN_PROGRESS)),
                last_number=Max("submission_number"),
            )
            .values_list("rows", "in_progress", "last_number")
        )
        _HISTORY[connection.alias] = Prepared(qs, phase=_PHASE, team=_TEAM)
    found = _HISTORY[connection.alias].rows(phase=phase.pk, team=team.pk)
    rows, in_progress, last_number = found[0] if found else (0, 0, 0)
    return rows, in_progress, last_number or 0


def check_counts(phase: ChallengePhase, team) -> int:
    """Refuse when a limit is reached; otherwise the team's highest submission number in the phase
    (:meth:`Numbering.take` numbers from it).

    The total, month and day counts are each a part of the team's submissions to the phase, so while those
    number fewer than the smallest of their limits none can be reached, and they are not counted: one query
    (how many, how many in progress, the highest number) instead of the four filtered counts, which cost
    about a microsecond per submission the team ever made to the phase (2 ms per submit after 2,500)."""
    rows, in_progress, last_number = _history(phase, team)
    _refuse_in_progress(phase, in_progress)
    if rows < min(phase.max_submissions, phase.max_submissions_per_month, phase.max_submissions_per_day):
        return last_number
    usage = _usage(phase, team)
    if usage.total >= phase.max_submissions:
        raise SubmissionError(
            "limit_total",
            f"the maximum number of submissions ({phase.max_submissions}) has been reached",
            403,
        )
    if usage.month >= phase.max_submissions_per_month:
        raise SubmissionError(
            "limit_month",
            f"the maximum number of submissions for this month ({phase.max_submissions_per_month}) has been reached",
            403,
        )
    if usage.day >= phase.max_submissions_per_day:
        tomorrow = usage.midnight + dt.timedelta(days=1)
        raise SubmissionError(
            "limit_day",
            f"the maximum number of submissions for today ({phase.max_submissions_per_day}) has been reached;"
            f" try again after {tomorrow:%Y-%m-%d %H:%M} UTC",
            403,
        )
    return usage.last_number


def _refuse_in_progress(phase: ChallengePhase, in_progress: int) -> None:
    if in_progress >= phase.max_concurrent_submissions_allowed:
        raise SubmissionError(
            "too_many_in_progress",
            f"you have {in_progress} submission(s) being processed; wait until one finishes"
            f" (the limit is {phase.max_concurrent_submissions_allowed})",
            406,
        )


def remaining(phase: ChallengePhase, team) -> dict[str, int]:
    """What a team may still submit to ``phase``: EvalAI's remaining_submissions numbers."""
    usage = _usage(phase, team)
    left_total = max(phase.max_submissions - usage.total, 0)
    return {
        "remaining_submissions_count": left_total,
        "remaining_submissions_this_month_count": min(
            max(phase.max_submissions_per_month - usage.month, 0), left_total
        ),
        "remaining_submissions_today_count": min(max(phase.max_submissions_per_day - usage.day, 0), left_total),
    }


@dataclass(frozen=True)
class Numbering:
    """The right to number a submission of ``team`` in ``phase``: only :func:`lock_numbering` makes one, so no
    number is read without the lock that serialises it. It lasts as long as the transaction it was made in."""

    phase: ChallengePhase
    team: ParticipantTeam

    def take(self, *, limits: bool) -> int:
        """The next number (one past the highest the team was given in the phase, whatever its status);
        ``limits``: refuse with :class:`SubmissionError` when a counting limit is reached (participants)."""
        last = check_counts(self.phase, self.team) if limits else _history(self.phase, self.team)[2]
        return last + 1


def lock_numbering(phase: ChallengePhase, team: ParticipantTeam, *, participation_id: int | None = None) -> Numbering:
    """Lock the team's registration in the phase's challenge until the caller's transaction ends: the one lock
    every path that numbers a submission (a submit, an upload's reservation, a re-run's copy) takes, so two of
    them cannot read the same highest number, nor both pass a limit. On PostgreSQL it is ``SELECT … FOR UPDATE``
    of the ``Participation`` row (``participation_id`` when the caller has it: the same row); SQLite needs no
    row lock, its IMMEDIATE transaction took the one write lock at BEGIN. A team with no registration (none can
    submit then) gets no lock. Take it before locking any submission row: submit's order, so no deadlock."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_numbering() holds its lock until the transaction ends: call it in one")
    if connection.features.has_select_for_update:
        rows = Participation.objects.select_for_update()
        if participation_id is None:
            rows = rows.filter(challenge_id=phase.challenge_id, team_id=team.pk)
        else:
            rows = rows.filter(pk=participation_id)
        rows.exists()
    return Numbering(phase, team)


def _apply_visibility(submission: Submission, phase: ChallengePhase, requested: bool | None) -> None:
    """EvalAI: default from the phase; a private leaderboard forces the phase default."""
    is_public = phase.is_submission_public if requested is None else bool(requested)
    if not phase.leaderboard_public:
        is_public = phase.is_submission_public
    submission.is_public = is_public
    submission.when_made_public = timezone.now() if is_public else None


def unpublish_others(submission: Submission) -> None:
    Submission.objects.filter(
        Q(phase=submission.phase, participant_team=submission.participant_team, is_public=True) & ~Q(pk=submission.pk)
    ).update(is_public=False)
