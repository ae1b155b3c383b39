"""A submission's evaluations: the current one (on the submission row) and the earlier ones a host's re-run
kept (:class:`~assay.server.submissions.models.SubmissionAttempt`), for the host's submission page and
/api/v1, each with its evidence (worker, what it was scored against, its files); and the note a team reads on
its own list that the hosts re-ran a submission.

Who sees what is the current evaluation's rule, applied to every evaluation alike: the submission's team and
the challenge's hosts (:func:`~.access.can_view`), results cut by :class:`~.result_access.ResultReader`, logs
where :func:`~.access.can_view_logs` allows, the metadata file and the worker for hosts only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from assay.server.storage import presigned_get

from ..models import Submission, SubmissionAttempt
from . import scored_against
from .access import can_view
from .errors import SubmissionError
from .result_access import Evaluated, ResultReader

#: An evaluation's files by the name a URL gives them (the current evaluation's web route uses the same).
FILE_KINDS = {
    "stdout": "stdout_file",
    "stderr": "stderr_file",
    "result": "submission_result_file",
    "metadata": "submission_metadata_file",
}
LOG_KINDS = ("stdout", "stderr")


@dataclass(frozen=True)
class Evaluation:
    number: int
    status: str
    status_display: str
    started_at: Any
    completed_at: Any
    execution_time: float | None
    output: Any  # cut for the reader (ResultReader.output)
    failure_reason: str
    current: bool
    rerun_by: str = ""  # who asked for the evaluation after this one (hosts only)
    rerun_at: Any = None
    worker: str = ""  # the name of the worker token whose worker ran it (hosts only; "" not run or unknown)
    scored_against: dict | None = None  # scored_against.as_told: package for its readers, SHA-256 for hosts
    files: tuple[str, ...] = ()  # the FILE_KINDS this reader may download


def evaluations(user, sub: Submission) -> list[Evaluation]:
    """Every evaluation of ``sub`` as ``user`` may see it, the first first; raises :class:`SubmissionError`
    (404) for anyone but its team and the challenge's hosts."""
    if not can_view(user, sub):
        raise SubmissionError("not_found", "no such submission", 404)
    reader = ResultReader(user)
    host = reader.access(sub).is_host
    held: list[Evaluated] = list(sub.attempts.select_related("rerun_by", "worker", "scored_package_version__package"))
    held.append(sub)
    rows = []
    for ev in held:
        current = ev is sub
        number = len(held) if current else ev.number
        worker = _worker(sub, ev) if host else None
        rerun_by = ev.rerun_by.get_username() if not current and host and ev.rerun_by else ""
        rows.append(
            Evaluation(
                number,
                ev.status,
                Submission.Status(ev.status).label,
                ev.started_at,
                ev.completed_at,
                ev.execution_time,
                reader.output(sub, ev),
                ev.failure_reason,
                current,
                rerun_by,
                None if current else ev.rerun_at,
                worker.name if worker else "",
                scored_against.as_told(user, sub, None if current else ev),
                _files(reader, sub, ev),
            )  # fmt: skip
        )
    return rows


def _worker(sub: Submission, ev: Evaluated):
    if ev is not sub:
        return ev.worker
    return sub.leased_by if sub.started_at else None  # a re-run (or a lost lease) keeps the last claim's token


def _files(reader: ResultReader, sub: Submission, ev: Evaluated) -> tuple[str, ...]:
    may = {
        "stdout": reader.may_read_logs(sub),
        "stderr": reader.may_read_logs(sub),
        "result": reader.may_read_result(sub, ev),
        "metadata": reader.may_read_metadata(sub, ev),
    }
    return tuple(kind for kind, field in FILE_KINDS.items() if may[kind] and getattr(ev, field))


def evaluation_of(sub: Submission, number: int) -> Evaluated:
    """Evaluation ``number`` of ``sub`` (1: its first; the last is the current one, on the row itself)."""
    kept = sub.attempts.count()
    if number == kept + 1:
        return sub
    found = sub.attempts.filter(number=number).first() if 1 <= number <= kept else None
    if found is None:
        raise SubmissionError("not_found", f"submission {sub.pk} has no evaluation {number} (it has {kept + 1})", 404)
    return found


@dataclass(frozen=True)
class EvaluationFile:
    """One evaluation's file for one reader: ``url`` (an object store's presigned URL) or ``body``."""

    filename: str
    content_type: str
    body: bytes | None = None
    url: str | None = None


def evaluation_file(user, sub: Submission, number: int, kind: str) -> EvaluationFile:
    """File ``kind`` of evaluation ``number`` of ``sub`` as ``user`` may read it (the current evaluation's rule:
    hosts the stored bytes, presigned on an object store; the team the result cut to its splits and logs
    without the server's folders, unless the phase hides logs: 403); raises :class:`SubmissionError`."""
    if not can_view(user, sub):
        raise SubmissionError("not_found", "no such submission", 404)
    if kind not in FILE_KINDS:
        raise SubmissionError("not_found", f"no such file: the kinds are {', '.join(FILE_KINDS)}", 404)
    held = evaluation_of(sub, number)
    field = FILE_KINDS[kind]
    logs = kind in LOG_KINDS
    filename = f"submission-{sub.pk}-evaluation-{number}-{kind}{'.txt' if logs else '.json'}"
    content_type = "text/plain; charset=utf-8" if logs else "application/json"
    reader = ResultReader(user)
    stored = getattr(held, field)
    if stored and reader.access(sub).is_host:  # the bytes as stored: an object store serves them itself
        url = presigned_get(stored.name, filename, content_type)
        if url is not None:
            return EvaluationFile(filename, content_type, url=url)
    if kind == "metadata":  # the evaluation's notes to the hosts
        if not reader.may_read_metadata(sub, held):
            raise SubmissionError("not_found", "no such file", 404)
        with stored.open("rb") as fh:
            return EvaluationFile(filename, content_type, body=fh.read())
    return EvaluationFile(filename, content_type, body=reader.document(sub, field, held))


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
