"""Per-phase retention of submission files: EvalAI's ``submission_artifact_retention_policy``.

After the phase's period, counted from when the submission was made, a finished (failed, cancelled,
archived) submission loses its input file and its stdout/stderr logs — the large, personal parts — and so
do the earlier evaluations a host's re-run kept (their logs; :class:`SubmissionAttempt`). Its results
stay: the output, the result and metadata files (an earlier evaluation's too), per-case rows and
leaderboard entries, so rankings never change. A submission whose audit was released (or released and
retracted) keeps everything: its files are evidence the published report and trail point to. The row
records when and under which policy its files went, and every face says so (410) instead of a missing file.

``assay admin retention --schedule`` puts it on the task runner: one queued task a day, each run queueing
the next before it works, so a failed run never ends the chain.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from assay.server import tasks

from ..models import Submission, SubmissionAttempt
from .errors import SubmissionError

log = logging.getLogger("assay.retention")
S = Submission.Status
SCHEDULED = "submissions.retention"
DAY = 24 * 3600
POLICY_DAYS = {"days_14": 14, "days_30": 30, "months_3": 90, "months_6": 180, "months_12": 365}
REMOVED_FIELDS = ("input_file", "stdout_file", "stderr_file")
ATTEMPT_REMOVED_FIELDS = ("stdout_file", "stderr_file")  # an earlier evaluation's logs; its results stay
SETTLED = (S.FINISHED, S.FAILED, S.CANCELLED, S.ARCHIVED)  # nothing will read the input again
#: Higher apps' say on whether a stored name is still theirs (a model version's file is shared with the
#: submissions made from it); each answers True to keep the file. Filled in by their AppConfig.ready.
KEEPERS: list[Callable[[str], bool]] = []


@dataclass
class Due:
    """One submission whose files the policy removes now, with what they are."""

    submission_id: int
    challenge_id: int
    phase: str
    policy: str
    submitted_at: dt.datetime
    files: list[tuple[str, str, int]] = field(default_factory=list)  # (field, storage name, bytes)

    @property
    def size(self) -> int:
        return sum(size for _, _, size in self.files)


def cutoff(policy: str, now: dt.datetime) -> dt.datetime | None:
    days = POLICY_DAYS.get(policy)
    return None if days is None else now - dt.timedelta(days=days)


def _expired(now: dt.datetime):
    """Settled submissions past their phase's period, files not yet removed, no released audit."""
    older = Q(pk__in=[])
    for policy, days in POLICY_DAYS.items():
        older |= Q(phase__submission_artifact_retention_policy=policy, submitted_at__lt=now - dt.timedelta(days=days))
    has_file = Q(Exists(_attempt_logs().filter(submission=OuterRef("pk"))))
    for name in REMOVED_FIELDS:
        has_file |= ~Q(**{name: ""})
    return (
        Submission.objects.filter(older, has_file, status__in=SETTLED, files_removed_at__isnull=True)
        .filter(release__isnull=True)  # audits' Release (reverse name): evidence of a released audit stays
        .order_by("pk")
    )


def _attempt_logs():
    """The kept earlier evaluations that still hold a log file."""
    held = Q()
    for name in ATTEMPT_REMOVED_FIELDS:
        held |= ~Q(**{name: ""})
    return SubmissionAttempt.objects.filter(held)


def _size(name: str, known: int | None = None) -> int:
    if known:
        return known
    try:
        return default_storage.size(name)
    except (OSError, NotImplementedError):
        return 0


def due(now: dt.datetime | None = None) -> Iterator[Due]:
    """What the policies remove now (nothing is changed): the dry run, and what :func:`apply` works through."""
    now = now or timezone.now()
    rows = _expired(now).select_related("phase").iterator(chunk_size=500)
    for sub in rows:
        item = Due(
            sub.pk,
            sub.phase.challenge_id,
            sub.phase.codename,
            sub.phase.submission_artifact_retention_policy,
            sub.submitted_at,
        )
        for name in REMOVED_FIELDS:
            stored = getattr(sub, name).name
            if stored:
                item.files.append((name, stored, _size(stored, sub.input_file_size if name == "input_file" else None)))
        for attempt in _attempt_logs().filter(submission=sub).order_by("number"):
            for name in ATTEMPT_REMOVED_FIELDS:
                stored = getattr(attempt, name).name
                if stored:
                    item.files.append((f"attempt {attempt.number} {name}", stored, _size(stored)))
        yield item


def apply(now: dt.datetime | None = None) -> list[Due]:
    """Remove what is due: each submission in its own transaction (re-checked under its row lock), its
    files deleted from storage once that commits. Returns what was removed."""
    now = now or timezone.now()
    removed = []
    for item in list(due(now)):
        with transaction.atomic():
            sub = _expired(now).select_for_update(of=("self",)).filter(pk=item.submission_id).first()
            if sub is None:  # re-run, released or removed meanwhile
                continue
            names = [getattr(sub, name).name for name in REMOVED_FIELDS if getattr(sub, name).name]
            for attempt in _attempt_logs().filter(submission=sub):
                names += [getattr(attempt, name).name for name in ATTEMPT_REMOVED_FIELDS if getattr(attempt, name).name]
                for name in ATTEMPT_REMOVED_FIELDS:
                    setattr(attempt, name, "")
                attempt.save(update_fields=list(ATTEMPT_REMOVED_FIELDS))
            for name in REMOVED_FIELDS:
                setattr(sub, name, "")
            sub.files_removed_at = now
            sub.files_removed_policy = sub.phase.submission_artifact_retention_policy
            sub.save(update_fields=[*REMOVED_FIELDS, "files_removed_at", "files_removed_policy"])
            transaction.on_commit(lambda names=names: _delete_unshared(names))
        removed.append(item)
    return removed


def _delete_unshared(names: list[str]) -> None:
    """Delete each file unless a submission or a kept evaluation still names it (a re-run's clone shares
    its input; the same log bytes of two evaluations share one name)."""
    for name in names:
        shared = Q()
        for field_name in REMOVED_FIELDS:
            shared |= Q(**{field_name: name})
        in_attempt = Q()
        for field_name in ATTEMPT_REMOVED_FIELDS:
            in_attempt |= Q(**{field_name: name})
        if (
            Submission.objects.filter(shared).exists()
            or SubmissionAttempt.objects.filter(in_attempt).exists()
            or any(keep(name) for keep in KEEPERS)
        ):
            continue
        try:
            default_storage.delete(name)
        except OSError:
            pass  # already gone: what was wanted


def removed_note(sub: Submission) -> str:
    """What every face says about files the policy removed."""
    when = sub.files_removed_at.strftime("%Y-%m-%d %H:%M") if sub.files_removed_at else "?"
    return (
        f"this submission's file and logs were removed on {when} UTC by the phase's retention policy"
        f" ({sub.files_removed_policy}); its results and leaderboard entries are kept"
    )


def require_kept(sub: Submission, field_name: str) -> None:
    """Refuse (410 Gone) a file the policy removed, saying when and why, before anyone looks for it."""
    if sub.files_removed_at is not None and field_name in REMOVED_FIELDS and not getattr(sub, field_name):
        raise SubmissionError("removed_by_retention", removed_note(sub), 410)


@tasks.handler(SCHEDULED, lease_seconds=3600)
def run_scheduled(payload: dict) -> None:
    """The task runner's daily run: queue tomorrow's first, then remove what is due."""
    schedule(delay=DAY)
    removed = apply()
    log.info("retention removed the files of %d submissions (%d bytes)", len(removed), sum(r.size for r in removed))


def schedule(delay: float = 0) -> bool:
    """Queue a run on the task runner ``delay`` seconds from now, unless one is queued; whether it queued one."""
    from assay.server.tasks.models import Task

    with transaction.atomic():
        if Task.objects.select_for_update().filter(name=SCHEDULED, state=Task.State.QUEUED).exists():
            return False
        tasks.enqueue(SCHEDULED, {}, delay=delay, max_attempts=3)
    return True


def unschedule() -> int:
    """Drop the queued runs; how many there were."""
    from assay.server.tasks.models import Task

    return Task.objects.filter(name=SCHEDULED, state=Task.State.QUEUED).delete()[0]
