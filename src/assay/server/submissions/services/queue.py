"""The database is the queue: claim with a lease, renew it, complete once, or lose it.

A submission row carries status, lease owner, lease expiry and attempt. Claiming takes the oldest
waiting row (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the IMMEDIATE transaction
is the single writer). A lease that is not renewed expires and the job is offered again with
attempt + 1; after ``ASSAY_MAX_ATTEMPTS`` lost leases it fails with the reason. A result names its
attempt and is accepted once per submission: from the current attempt, or from an earlier one whose
lease ran out (its worker could not reach the server in time) as long as no attempt has completed;
a later attempt still running is then superseded (its next heartbeat hears "lease lost"). Duplicate
results, and results after a cancel or a completed attempt, are rejected without touching anything.
A claim that finds nothing waits to be woken by new work (:mod:`.wakeup`), not by polling.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, get_args

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Min, Q
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from assay.evaluation.contract import MAX_CASES_GZIP_BYTES, ErrorKind, check_cases, decode_cases, split_cases
from assay.server.challenges.services import phase_rules
from assay.server.prepared import Prepared, write
from assay.server.storage import ContentWriter

from .. import signals
from ..models import Submission, WorkerToken
from . import cases, images, scored_against, wakeup
from .errors import LeaseLost, SubmissionError
from .results import ResultError, parse_output
from .tokens import PLATFORM_QUEUE

S = Submission.Status
WAITING = (S.SUBMITTED, S.RESUMING)
JOB_RELATED = ("phase__challenge", "participant_team", "created_by")  # read by jobs.job_payload


def lease_seconds() -> int:
    return settings.WORKER_LEASE_SECONDS


MAX_JOBS_PER_CLAIM = 16  # a batched claim's bound, whatever the worker asks: one worker must not hoard the queue


def claim_next(
    token: WorkerToken, worker_id: str, *, containers: bool = False, code_bundles: bool = False
) -> Submission | None:
    """Lease the oldest waiting job of the token's queue to ``worker_id``, or return None.

    Jobs of docker-based challenges go only to workers that said they can run them, so none is failed
    for lack of an engine: images to workers with ``containers`` (a Docker engine or a cluster), code
    bundles (zips of static-dataset phases) to workers with ``code_bundles`` (a working bubblewrap
    sandbox: participant code never runs without one). The platform's queue hands out only jobs of
    challenges an administrator approved: a host's evaluation code runs on the platform's machines
    only then (:func:`waiting_for`); a remote challenge's own queue is its hosts' machines.
    """
    found = claim_several(token, worker_id, 1, containers=containers, code_bundles=code_bundles)
    return found[0] if found else None


def claim_several(
    token: WorkerToken, worker_id: str, max_jobs: int, *, containers: bool = False, code_bundles: bool = False
) -> list[Submission]:
    """:func:`claim_next` for up to ``max_jobs`` jobs (at most :data:`MAX_JOBS_PER_CLAIM`), oldest first,
    leased in one transaction (the batched worker protocol: a worker with that many free evaluator slots)."""
    limit = max(1, min(int(max_jobs), MAX_JOBS_PER_CLAIM))
    while True:
        now = timezone.now()
        leased: list[Submission] = []
        lost_for_good = 0
        with transaction.atomic():
            # compiled in the transaction: PostgreSQL's SELECT … FOR UPDATE is refused in autocommit mode
            claim = _claim_query(token.queue_name == PLATFORM_QUEUE, containers, code_bundles, limit)
            found = claim.instances(queue=token.queue_name, now=connection.ops.adapt_datetimefield_value(now))
            if not found:
                return []
            for sub in found:
                if sub.status == S.RUNNING:
                    sub.expired_leases += 1
                    if sub.expired_leases >= settings.WORKER_MAX_ATTEMPTS:
                        _fail(
                            sub,
                            f"the evaluation was lost {sub.expired_leases} times (its worker stopped or crashed);"
                            " the host has been told",
                            now,
                        )
                        signals.evaluated.send(sender=Submission, submission=sub, failure="lost")
                        lost_for_good += 1
                        continue
                sub.status = S.RUNNING
                sub.attempt += 1
                sub.lease_owner = worker_id[:100]
                sub.leased_by_id = token.pk
                sub.lease_expires_at = now + dt.timedelta(seconds=lease_seconds())
                sub.started_at = now
                scored_against.record(sub)  # in this UPDATE: what the job block (jobs.job_payload) hands over
                _save_claimed(sub)
                signals.claimed.send(sender=Submission, submission=sub)
                leased.append(sub)
        if leased or not lost_for_good:
            return leased
        # every row found had lost its last lease (failed above): look again for jobs that can run


#: What a claim writes on each row it leases.
CLAIMED = (
    "status", "attempt", "lease_owner", "leased_by", "lease_expires_at", "started_at", "expired_leases",
    *scored_against.FIELDS,
)  # fmt: skip
_CLAIM_WRITES: dict[str, str] = {}


def _save_claimed(sub: Submission) -> None:
    """``sub.save(update_fields=CLAIMED)`` by an ``UPDATE`` built once per database (the ORM building it was a
    third of a claim's CPU, once per job), its ``pre_save`` and ``post_save`` sent as that save sends them."""
    using, columns = connection.alias, [Submission._meta.get_field(name) for name in CLAIMED]
    if using not in _CLAIM_WRITES:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(column.column)} = %s" for column in columns)
        _CLAIM_WRITES[using] = f"UPDATE {qn(Submission._meta.db_table)} SET {sets} WHERE {qn('id')} = %s"
    update_fields = frozenset(CLAIMED)
    pre_save.send(sender=Submission, instance=sub, raw=False, using=using, update_fields=update_fields)
    params = [column.get_db_prep_save(column.pre_save(sub, False), connection) for column in columns]
    if write(connection, _CLAIM_WRITES[using], [*params, sub.pk]) == 0:  # as save() refuses it; never (locked)
        raise DatabaseError("Save with update_fields did not affect any rows.")
    post_save.send(sender=Submission, instance=sub, created=False, update_fields=update_fields, raw=False, using=using)


# The claim query compiled once per database and kind of worker (platform queue or not, its abilities), run
# with the queue's name and the time: building it costs the ORM several times what running it does.
_CLAIMS: dict[tuple[str, bool, bool, bool, int], Prepared] = {}
_QUEUE_MARK = "\x00queue"  # stand-ins for the queue's name and the time: no queue is named so, no lease is that old
_NOW_MARK = dt.datetime(1901, 1, 1, tzinfo=dt.UTC)


def _claim_query(platform: bool, containers: bool, code_bundles: bool, limit: int = 1) -> Prepared:
    key = (connection.alias, platform, containers, code_bundles, limit)
    if key not in _CLAIMS:
        jobs = offered(PLATFORM_QUEUE if platform else _QUEUE_MARK, waiting(_QUEUE_MARK, _NOW_MARK))
        qs = (
            for_runner(jobs, containers, code_bundles)
            .select_for_update(skip_locked=True, of=("self",))  # never lock the joined rows
            .select_related(*JOB_RELATED)  # what jobs.job_payload reads, without a query each
            .order_by("submitted_at", "id")[:limit]
        )
        _CLAIMS[key] = Prepared(qs, queue=_QUEUE_MARK, now=connection.ops.adapt_datetimefield_value(_NOW_MARK))
    return _CLAIMS[key]


def for_runner(jobs, containers: bool, code_bundles: bool):
    """The part of ``jobs`` a worker with these abilities can run: a docker-based challenge's job is an
    image (``containers``) or a code bundle (``code_bundles``); every other job runs anywhere. Written
    as positive filters where it can be (cheaper for the ORM to build than negations, on every claim)."""
    if not containers and not code_bundles:
        return jobs.filter(phase__challenge__is_docker_based=False)
    if not containers:
        return jobs.filter(Q(phase__challenge__is_docker_based=False) | images.code_bundles())
    if not code_bundles:
        return jobs.exclude(images.code_bundles())
    return jobs


def claim_waiting(
    token: WorkerToken, worker_id: str, *, wait: float, containers: bool = False, code_bundles: bool = False
) -> Submission | None:
    """:func:`claim_next`, waiting up to ``wait`` seconds (at most ``WORKER_LONG_POLL_SECONDS``) for a
    job (the long-poll); None if none came.

    Between looks it sleeps until woken by new work, until the earliest lease of the queue runs out,
    or for ``WORKER_CLAIM_RECHECK_SECONDS``, whichever is first; a worker that said it is leaving
    (:func:`leave`) gets None at once.
    """
    found = claim_several_waiting(token, worker_id, 1, wait=wait, containers=containers, code_bundles=code_bundles)
    return found[0] if found else None


def claim_several_waiting(
    token: WorkerToken,
    worker_id: str,
    max_jobs: int,
    *,
    wait: float,
    containers: bool = False,
    code_bundles: bool = False,
) -> list[Submission]:
    """:func:`claim_waiting` for up to ``max_jobs`` jobs (:func:`claim_several`): it returns as soon as
    there is at least one, never waiting for a batch to fill."""
    deadline = time.monotonic() + min(wait, settings.WORKER_LONG_POLL_SECONDS)
    looked = False
    while True:
        seen = wakeup.version()  # before looking: work announced during the look still wakes us
        if wakeup.has_left(_leaver(token, worker_id)):
            return []
        if looked and not WorkerToken.objects.filter(pk=token.pk, revoked_at__isnull=True).exists():
            return []  # revoked (or deleted) while its claim waited: it must not be handed a job
        looked = True
        subs = claim_several(token, worker_id, max_jobs, containers=containers, code_bundles=code_bundles)
        remaining = deadline - time.monotonic()
        if subs or remaining <= 0:
            return subs
        wakeup.wait(
            seen, min(remaining, _until_a_lease_expires(token.queue_name), settings.WORKER_CLAIM_RECHECK_SECONDS)
        )


def _until_a_lease_expires(queue_name: str) -> float:
    """Seconds until the earliest running lease of the queue runs out (a job to offer again)."""
    soonest = Submission.objects.filter(queue_name=queue_name, status=S.RUNNING).aggregate(at=Min("lease_expires_at"))
    if soonest["at"] is None:
        return math.inf
    return max((soonest["at"] - timezone.now()).total_seconds(), 0.0) + 0.01


def leave(token: WorkerToken, worker_id: str, *, everywhere: bool = True) -> None:
    """The worker is going away: its waiting claim ends without a job, so none is leased to nobody.

    ``everywhere=False`` (the in-process worker, whose claim waits in this process) tells only this
    process, with no database statement: it may be called from whatever thread stops the worker."""
    wakeup.leave(_leaver(token, worker_id), everywhere=everywhere)


def _leaver(token: WorkerToken, worker_id: str) -> str:
    """A worker id as its own token sees it: no token can end another token's claims. Named by the
    token's hash, not its id: SQLite hands a deleted newest row's id to the next row, so a token made
    after another was deleted would otherwise inherit that token's "left" for ``LEFT_FOR`` seconds."""
    return f"{token.token_hash[:24]}:{worker_id}"


def announce_saved(sender, instance: Submission, update_fields=None, **kwargs) -> None:
    """``post_save`` of a submission: one that became waiting (submitted, uploaded, re-run, resumed)
    wakes the claims of its queue. Connected in ``SubmissionsConfig.ready`` so no path that saves one
    can forget it; queryset updates (``release``) announce themselves."""
    if instance.status in WAITING and (update_fields is None or "status" in update_fields):
        wakeup.announce(instance.queue_name)


def waiting(queue_name: str, now: dt.datetime | None = None):
    """Jobs of a queue that a worker may take: waiting ones and those whose lease ran out."""
    now = now or timezone.now()
    return Submission.objects.filter(queue_name=queue_name).filter(
        Q(status__in=WAITING) | Q(status=S.RUNNING, lease_expires_at__lt=now)
    )


def peek(queue_name: str) -> Submission | None:
    """The job :func:`claim_next` would hand out, without taking it (EvalAI's SQS receive)."""
    return offered(queue_name, waiting(queue_name)).order_by("submitted_at", "id").first()


WAITING_FOR_APPROVAL = (
    "waiting for an administrator to approve the challenge: the platform's workers evaluate it once"
    " approved (meanwhile its hosts can test the bundle with `assay host bundle test`)"
)


def held_for_approval(queue_name: str, approved: bool) -> bool:
    """The approval rule: the platform's queue holds a challenge's jobs back until an administrator
    approved it (a host's evaluation code runs on the platform's machines only then); a remote
    challenge's own queue is its hosts' machines. :func:`offered` applies it to a query,
    :func:`waiting_for` to one submission."""
    return queue_name == PLATFORM_QUEUE and not approved


def offered(queue_name: str, jobs):
    """The part of ``jobs`` (of queue ``queue_name``) its workers may be handed (:func:`held_for_approval`).
    The one filter of :func:`claim_next` and of queue positions."""
    if held_for_approval(queue_name, approved=False):  # this queue holds unapproved challenges' jobs
        return jobs.filter(phase__challenge__approved_by_admin=True)
    return jobs


def waiting_for(sub: Submission) -> str | None:
    """Why a waiting submission is not handed to any worker yet (:func:`claim_next`'s rule), or None."""
    if sub.status in WAITING and held_for_approval(sub.queue_name, sub.phase.challenge.approved_by_admin):
        return WAITING_FOR_APPROVAL
    return None


def announce_approved(sender, instance, update_fields=None, **kwargs) -> None:
    """``post_save`` of a challenge: an approved one's waiting submissions may be claimable now, so
    the platform queue's waiting claims are woken (connected in ``SubmissionsConfig.ready``)."""
    if instance.approved_by_admin and not instance.remote_evaluation:
        if update_fields is None or "approved_by_admin" in update_fields:
            wakeup.announce(PLATFORM_QUEUE)


def held_by(token: WorkerToken):
    """The jobs a worker token holds: running on its queue under a lease it took. A worker token reads a
    submission, or any file of it, only through this (native files, EvalAI's submission detail)."""
    if token.pk is None:  # a host acting through their user token holds nothing as a worker
        return Submission.objects.none()
    return Submission.objects.filter(queue_name=token.queue_name, status=S.RUNNING, leased_by_id=token.pk)


def readable_by_worker(token: WorkerToken, submission_id: int) -> Submission | None:
    """A submission a worker token may read: one it holds, or the one its queue offers right now.

    EvalAI's host-run workers read the offered job (:func:`peek`) before they take it, as SQS hands a
    message to whoever receives it; every other submission of the queue stays closed to the token.
    """
    held = held_by(token).filter(pk=submission_id).first()
    if held is not None:
        return held
    head = peek(token.queue_name)
    return head if head is not None and head.pk == submission_id else None


@transaction.atomic
def take(
    token: WorkerToken, submission_id: int, *, worker_id: str, lease_seconds: int, job_name: str = ""
) -> Submission:
    """Lease one named job (EvalAI's host-run workers pick the job, then say ``running``).

    Saying ``running`` again while the lease holds keeps the attempt; otherwise this is a new claim. A
    job another worker token holds (its lease running) is refused to a worker token: it is not theirs to
    read or report. ``token`` without a row (a host's own user token) acts with the host's authority.
    """
    now = timezone.now()
    row = (
        Submission.objects.select_for_update(of=("self",))  # lock the submission only, not the joined rows
        .select_related(*JOB_RELATED)
        .filter(pk=submission_id, queue_name=token.queue_name)
        .first()
    )
    if row is None:
        raise SubmissionError("not_found", "Submission does not exist", 404)
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    claimed = False
    if row.status == S.RUNNING and row.lease_expires_at and row.lease_expires_at >= now:
        if token.pk is not None and row.leased_by_id not in (None, token.pk):
            raise SubmissionError("held_elsewhere", f"submission {row.pk} is held by another worker", 409)
        row.lease_expires_at = lease_until
    elif row.status in WAITING or row.status == S.RUNNING:
        row.status = S.RUNNING
        row.attempt += 1
        row.lease_owner = worker_id[:100]
        row.leased_by_id = token.pk
        row.lease_expires_at = lease_until
        row.started_at = now
        scored_against.record(row)
        claimed = True
    else:
        raise SubmissionError("bad_state", f"submission {row.pk} is {row.status}; it cannot run", 409)
    if job_name:
        row.job_name = job_name[:200]
    row.save(
        update_fields=[
            "status",
            "attempt",
            "lease_owner",
            "leased_by",
            "lease_expires_at",
            "started_at",
            "job_name",
            *scored_against.FIELDS,
        ]
    )
    if claimed:
        signals.claimed.send(sender=Submission, submission=row)
    return row


def _held(token: WorkerToken, submission_id: int, attempt: int):
    return Submission.objects.filter(pk=submission_id, queue_name=token.queue_name, status=S.RUNNING, attempt=attempt)


def _leases(token: WorkerToken, pairs: list[tuple[int, int]]):
    """The leases a heartbeat renews: each ``(submission_id, attempt)`` among the jobs the token holds
    (:func:`held_by`). One rule for the one-job heartbeat and the batched one."""
    match = Q()
    for submission_id, attempt in pairs:
        match |= Q(pk=submission_id, attempt=attempt)
    return held_by(token).filter(match)


def heartbeat(token: WorkerToken, submission_id: int, attempt: int) -> dt.datetime:
    """Renew the lease; raises :class:`LeaseLost` when the job was cancelled, re-claimed or finished."""
    expires = timezone.now() + dt.timedelta(seconds=lease_seconds())
    if not _leases(token, [(submission_id, attempt)]).update(lease_expires_at=expires):
        raise LeaseLost(f"submission {submission_id} attempt {attempt} is no longer leased to you")
    return expires


MAX_HEARTBEAT_JOBS = 4 * MAX_JOBS_PER_CLAIM  # jobs one heartbeat renews: a full worker's, with room to spare
EXTENDED, LOST, ENDED = "extended", "lost", "ended"  # a batched heartbeat's answer per job


@dataclass(frozen=True)
class Beat:
    """A batched heartbeat's answer for one job. ``extended``: the lease runs to ``lease_expires_at``.
    ``lost``: the job was offered again (its lease ran out) but no attempt has completed, so this
    attempt's result is still taken if it comes first: finish and report it. ``ended``: cancelled,
    completed or not this token's: stop, a result would be refused (:func:`_takes_result`)."""

    submission_id: int
    attempt: int
    state: str
    lease_expires_at: dt.datetime | None = None


def heartbeat_several(token: WorkerToken, jobs: list[tuple[int, int]]) -> list[Beat]:
    """Renew the leases of every job a worker holds in one call (``(submission_id, attempt)`` pairs),
    answered in order. Two statements whatever the number: one UPDATE of the leases this token holds
    (:func:`_leases`, the one-job heartbeat's rule), one read of the rest to tell lost from ended. A
    job of another queue or token, or none at all, is ``ended`` (as the one-job route's 409 says)."""
    if len(jobs) > MAX_HEARTBEAT_JOBS:
        raise SubmissionError("invalid", f"at most {MAX_HEARTBEAT_JOBS} jobs per heartbeat", 400)
    pairs = list(dict.fromkeys((int(sid), int(attempt)) for sid, attempt in jobs))
    if not pairs:
        return []
    expires = timezone.now() + dt.timedelta(seconds=lease_seconds())
    _leases(token, pairs).update(lease_expires_at=expires)
    found = Submission.objects.filter(pk__in={sid for sid, _ in pairs}, queue_name=token.queue_name).only(
        "status", "attempt", "expired_leases", "leased_by", "lease_expires_at"
    )
    rows = {sub.pk: sub for sub in found}
    beats: dict[tuple[int, int], Beat] = {}
    for sid, attempt in pairs:
        sub = rows.get(sid)
        if sub is None:
            beats[sid, attempt] = Beat(sid, attempt, ENDED)
        elif sub.status == S.RUNNING and sub.attempt == attempt:  # renewed above if this token holds it
            held = token.pk is not None and sub.leased_by_id == token.pk  # held_by's rule
            beats[sid, attempt] = (
                Beat(sid, attempt, EXTENDED, sub.lease_expires_at) if held else Beat(sid, attempt, ENDED)
            )
        else:
            beats[sid, attempt] = Beat(sid, attempt, LOST if _takes_result(sub, attempt) else ENDED)
    return [beats[int(sid), int(attempt)] for sid, attempt in jobs]


def release(token: WorkerToken, submission_id: int, attempt: int) -> None:
    """Hand the job back untouched (a worker shutting down); it does not count as a lost attempt."""
    if not _held(token, submission_id, attempt).update(
        status=S.SUBMITTED, lease_owner="", lease_expires_at=None, started_at=None
    ):
        raise LeaseLost(f"submission {submission_id} attempt {attempt} is no longer leased to you")
    wakeup.announce(token.queue_name)


MAX_ERROR_CHARS = 20000  # a worker's failure reason (stored as the submission's, up to 5000)
MAX_SANDBOX_CHARS = 500  # the worker's one-line sandbox description
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)  # how an evaluation failed, as the worker tells (metrics' reason)


@dataclass
class Completion:
    """What a worker reports when an evaluation ends, checked whichever transport brought it (a refusal is
    a :class:`SubmissionError` 400); logs beyond twice the evaluation output cap are cut, not refused."""

    attempt: int
    output: Any = None
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    sandbox: str = ""
    cases: str | None = None  # the per-case rows: gzip'd JSON lines, base64 (the worker's own part of a report)
    error_kind: str | None = None  # with an error: one of ERROR_KINDS
    cases_gzip: bytes | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.cases_gzip = _wire_cases(self.cases)
        texts = {"error": self.error or "", "stdout": self.stdout, "stderr": self.stderr, "sandbox": self.sandbox}
        for name, value in texts.items():
            if not isinstance(value, str):
                raise SubmissionError("invalid", f"{name}: not a string", 400)
            if "\x00" in value:
                raise SubmissionError("invalid", f"{name}: null characters are not allowed", 400)
        for name, cap in (("error", MAX_ERROR_CHARS), ("sandbox", MAX_SANDBOX_CHARS)):
            if len(texts[name]) > cap:
                raise SubmissionError("invalid", f"{name}: longer than {cap} characters", 400)
        cap = settings.EVALUATION_MAX_OUTPUT_BYTES * 2
        if len(self.stdout) > cap:
            self.stdout = self.stdout[:cap] + "\n[truncated by the server]"
        if len(self.stderr) > cap:
            self.stderr = self.stderr[:cap] + "\n[truncated by the server]"
        self.error = self.error or None
        if self.error_kind is not None and self.error_kind not in ERROR_KINDS:
            raise SubmissionError("invalid", f"error_kind: one of {', '.join(ERROR_KINDS)}", 400)

    @classmethod
    def from_report(cls, attempt: int, report: dict[str, Any]) -> Completion:
        """A worker's report as :meth:`assay.worker.WorkerClient.complete` sends it (missing keys: empty)."""
        return cls(
            attempt=attempt,
            output=report.get("output"),
            error=report.get("error"),
            stdout=report.get("stdout") or "",
            stderr=report.get("stderr") or "",
            sandbox=report.get("sandbox") or "",
            cases=report.get("cases"),
            error_kind=report.get("error_kind"),
        )


def _wire_cases(text: object) -> bytes | None:
    """A report's ``cases`` part as gzip bytes (unpacked and checked later, as the output is); a refusal
    (400) for a part that is no base64 or larger than the server takes."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise SubmissionError("invalid", "cases: not a string (gzip'd JSON lines, base64)", 400)
    cap = MAX_CASES_GZIP_BYTES
    if len(text) > 4 * (cap // 3 + 1):
        raise SubmissionError(
            "too_large",
            f"cases: the per-case rows are {len(text) * 3 // 4 / 1024**2:.1f} MiB compressed; "
            f"the server takes at most {cap // 1024**2} MiB",
            413,
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SubmissionError("invalid", "cases: not base64 (gzip'd JSON lines, base64)", 400) from None


def _takes_result(sub: Submission, attempt: int) -> bool:
    """Whether attempt ``attempt`` may still report: no attempt has completed and none was cancelled.

    That is the running attempt, or an earlier one whose lease ran out while its worker could not
    reach the server: the job is running again (that later attempt is superseded), was handed back
    (submitted), or failed because every lease was lost (never because a worker reported).
    """
    if not 1 <= attempt <= sub.attempt:
        return False
    if sub.status in (S.RUNNING, S.SUBMITTED):
        return True
    return sub.status == S.FAILED and sub.expired_leases >= settings.WORKER_MAX_ATTEMPTS


# complete()'s guarded UPDATE as SQL built once per database and set of columns: the ORM's building of it
# cost more than SQLite's running it, once per result.
_RECORDS: dict[tuple[str, tuple[str, ...]], str] = {}


def _record_result(token: WorkerToken, submission_id: int, attempt: int, changes: dict[str, Any]) -> bool:
    """Set ``changes`` on the submission only if attempt ``attempt`` (>= 1: checked before) may still report:
    :func:`_takes_result` as the UPDATE's condition, so one statement both checks and records a result (two
    reports cannot both match); whether it did."""
    key = (connection.alias, tuple(changes))
    sql = _RECORDS.get(key)
    if sql is None:
        qn, column = connection.ops.quote_name, (lambda name: qn(Submission._meta.get_field(name).column))
        sets = ", ".join(f"{column(name)} = %s" for name in changes)
        where = (
            f"{qn('id')} = %s AND {column('queue_name')} = %s AND {column('attempt')} >= %s"
            f" AND ({column('status')} IN (%s, %s) OR ({column('status')} = %s AND {column('expired_leases')} >= %s))"
        )
        sql = _RECORDS[key] = f"UPDATE {qn(Submission._meta.db_table)} SET {sets} WHERE {where}"
    field = Submission._meta.get_field
    params = [field(name).get_db_prep_save(value, connection) for name, value in changes.items()]
    late = (S.RUNNING, S.SUBMITTED, S.FAILED, settings.WORKER_MAX_ATTEMPTS)
    return write(connection, sql, [*params, submission_id, token.queue_name, attempt, *late]) > 0


_REPORTED: dict[str, Prepared] = {}
_ID_MARK = -101  # a stand-in for the submission's id: no row has a negative one


def _reported_query() -> Prepared:
    """The reported submission of the token's queue (one row by primary key), compiled once per database."""
    if connection.alias not in _REPORTED:
        qs = Submission.objects.filter(pk=_ID_MARK, queue_name=_QUEUE_MARK)[:1]
        _REPORTED[connection.alias] = Prepared(qs, id=_ID_MARK, queue=_QUEUE_MARK)
    return _REPORTED[connection.alias]


def complete(token: WorkerToken, submission_id: int, report: Completion) -> Submission:
    """Record an attempt's outcome (see :func:`_takes_result`): files, status and leaderboard entries, all
    at once. Taking a late result when a later attempt runs supersedes that one.

    The row is read once, unlocked, to check the result against its phase (cached) and write the files;
    then one UPDATE guarded by the same rule records the outcome: if another report or a cancel came in
    between, it matches nothing and this report is refused as before, its files removed."""
    found = _reported_query().instances(id=submission_id, queue=token.queue_name)
    sub = found[0] if found else None
    if sub is None or not _takes_result(sub, report.attempt):
        raise LeaseLost(f"submission {submission_id} attempt {report.attempt} is no longer leased to you")
    parsed, reason, rows = None, report.error, None
    if reason is None:
        try:
            output, rows = split_cases(report.output) if isinstance(report.output, dict) else (report.output, None)
            parsed = parse_output(output, phase_rules.phase_with_challenge(sub.phase_id))
            if report.cases_gzip is not None:
                rows = check_cases(decode_cases(report.cases_gzip))
        except ResultError as exc:
            parsed, rows = None, None
            reason = f"the evaluation script returned an unusable result: {exc}"
    evaluated_before = sub.completed_at is not None  # a resumed evaluation: its earlier rows may be kept
    writer = ContentWriter()
    try:
        written = None
        if parsed is not None and rows is not None:
            written = cases.write_cases(writer, sub, rows, checked=True)  # checked above (wire or output)
        changes: dict[str, Any] = _write_files(writer, sub, report, parsed)
        now = timezone.now()
        changes.update(completed_at=now, lease_owner="", lease_expires_at=None)
        if parsed is None:
            changes.update(status=S.FAILED, failure_reason=(reason or "evaluation failed")[:5000])
        else:
            changes.update(
                status=S.PARTIALLY_EVALUATED if parsed.partial else S.FINISHED,
                output={"result": [{k: v.metrics} for k, v in parsed.splits.items()]},
                failure_reason="",
            )
        with transaction.atomic():
            if not _record_result(token, submission_id, report.attempt, changes):
                raise LeaseLost(f"submission {submission_id} attempt {report.attempt} is no longer leased to you")
            for name, value in changes.items():
                setattr(sub, name, value)
            if written is not None:  # before the signals: their receivers (audits) read the rows
                cases.record_cases(sub, written)
            elif evaluated_before:  # evaluated again without rows: the earlier evaluation's go
                cases.drop_cases(sub)
            if parsed is None:  # its status changed: a re-run's earlier rows must leave the leaderboards
                signals.changed.send(sender=Submission, submission=sub)
            else:
                signals.scored.send(sender=Submission, submission=sub, splits=parsed.splits)  # leaderboards follow
            reported = report.error_kind or "unspecified"  # the worker's word for its error; none: the server refused
            failure = None if parsed is not None else reported if report.error is not None else "bad_output"
            signals.evaluated.send(sender=Submission, submission=sub, failure=failure)
    except BaseException:
        writer.rollback()
        raise
    return sub


def complete_several(
    token: WorkerToken, reports: list[tuple[int, Completion | SubmissionError]]
) -> list[Submission | SubmissionError]:
    """Several results in one call (the batched worker protocol), answered in order: the submission
    taken, or the refusal. Each is :func:`complete` on its own, with its own guard and transaction, so
    each is accepted exactly once (twice in one batch: the second is refused) and a refused one (a
    report that did not check out, passed in as its refusal) leaves the others as they are."""
    if len(reports) > MAX_JOBS_PER_CLAIM:
        raise SubmissionError("invalid", f"at most {MAX_JOBS_PER_CLAIM} results per call", 400)
    answers: list[Submission | SubmissionError] = []
    for submission_id, report in reports:
        if isinstance(report, SubmissionError):
            answers.append(report)
            continue
        try:
            answers.append(complete(token, submission_id, report))
        except SubmissionError as exc:
            answers.append(exc)
    return answers


def _write_files(writer: ContentWriter, sub: Submission, report: Completion, parsed) -> dict[str, str]:
    folder = f"submission_files/{sub.pk}"
    files = {
        "stdout_file": writer.save(folder, "stdout.txt", data=report.stdout.encode("utf-8", "replace"))[0],
        "stderr_file": writer.save(folder, "stderr.txt", data=report.stderr.encode("utf-8", "replace"))[0],
    }
    if parsed is not None:
        result_doc = parsed.submission_result
        if result_doc is None:
            result_doc = [{k: v.metrics} for k, v in parsed.splits.items()]
        payload = json.dumps(result_doc, indent=2, default=str).encode()
        files["submission_result_file"] = writer.save(folder, "submission_result.json", data=payload)[0]
        if parsed.submission_metadata is not None:
            meta = json.dumps(parsed.submission_metadata, indent=2, default=str).encode()
            files["submission_metadata_file"] = writer.save(folder, "submission_metadata.json", data=meta)[0]
    return files


def _fail(sub: Submission, reason: str, now: dt.datetime) -> None:
    sub.status = S.FAILED
    sub.failure_reason = reason[:5000]
    sub.completed_at = now
    sub.lease_owner = ""
    sub.lease_expires_at = None
    sub.save()
