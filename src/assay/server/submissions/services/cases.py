"""A submission's per-case rows: stored privately, read back joined with the phase's hidden case metadata.

An evaluation script may return ``cases`` beside ``result`` (:func:`assay.evaluation.contract.check_cases`).
The rows hold the reference label of every case, so they never reach a participant: they are kept as one
gzip'd JSON lines file in the file storage (a :class:`SubmissionCases` row names it, with its sha256, row
count and columns), and only the challenge's hosts, its auditors and staff may read them
(:func:`may_read_cases`, the one rule every face asks). Subgroup attributes come from the host's
``case_metadata_file`` (CSV, first column ``case_id``), joined here on reading: a metadata column overrides
a key of the same name in the row, so a participant cannot choose the subgroup a case counts in.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from assay.evaluation.contract import check_cases, decode_cases, encode_cases
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.roles import is_auditor, is_host
from assay.server.refusals import Refusal
from assay.server.storage import ContentWriter
from assay.server.teams.services import is_member

from ..models import Submission, SubmissionCases
from .access import can_view

CASES_FILE = "cases.jsonl.gz"


@dataclass(frozen=True)
class CasesFile:
    """Rows written to storage, not yet recorded (:func:`record_cases` does, in the caller's transaction)."""

    name: str
    sha256: str
    count: int
    columns: list[str]


def store_cases(submission: Submission, rows: list[dict[str, Any]]) -> SubmissionCases:
    """Keep ``rows`` (checked again: the one contract) as the submission's cases, replacing earlier ones."""
    writer = ContentWriter()
    try:
        with transaction.atomic():
            return record_cases(submission, write_cases(writer, submission, rows))
    except BaseException:
        writer.rollback()
        raise


def write_cases(
    writer: ContentWriter, submission: Submission, rows: list[dict[str, Any]], *, checked: bool = False
) -> CasesFile:
    """Check ``rows`` (unless the caller just did, ``checked``) and write them as gzip'd JSON lines with
    ``writer`` (which can undo it)."""
    if not checked:
        rows = check_cases(rows)
    name, digest, _ = writer.save(f"submission_cases/{submission.pk}", CASES_FILE, data=encode_cases(rows))
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return CasesFile(name=name, sha256=digest, count=len(rows), columns=list(columns))


def record_cases(submission: Submission, written: CasesFile) -> SubmissionCases:
    """Point the submission's cases row at ``written`` (in a transaction); the replaced file goes after commit."""
    old = SubmissionCases.objects.select_for_update().filter(submission=submission).first()
    old_name = old.file.name if old is not None else ""
    stored, _ = SubmissionCases.objects.update_or_create(
        submission=submission,
        defaults={"file": written.name, "sha256": written.sha256, "count": written.count, "columns": written.columns},
    )
    if old_name and old_name != written.name:
        transaction.on_commit(lambda: _delete(old_name))
    return stored


def drop_cases(submission: Submission) -> None:
    """Forget the submission's cases (a re-run that returned none): the row now, the file after commit."""
    old = SubmissionCases.objects.filter(submission=submission).first()
    if old is None:
        return
    name = old.file.name
    old.delete()
    if name:
        transaction.on_commit(lambda: _delete(name))


def _delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        pass


def stored_cases(submission: Submission) -> SubmissionCases | None:
    try:
        return submission.cases
    except SubmissionCases.DoesNotExist:
        return None


def raw_rows(submission: Submission) -> list[dict[str, Any]] | None:
    """The rows as the evaluation returned them (after the contract), without metadata; None: none kept."""
    stored = stored_cases(submission)
    if stored is None:
        return None
    with stored.file.open("rb") as fh:
        return decode_cases(fh.read())


def case_metadata(phase: ChallengePhase) -> tuple[list[str], dict[str, dict[str, str | None]]]:
    """The phase's hidden case metadata: its attribute columns (after ``case_id``) and each case's values
    (an empty cell is None). No file: no columns, no cases."""
    if not phase.case_metadata:
        return [], {}
    with phase.case_metadata.open("rb") as fh:
        text = fh.read().decode("utf-8-sig", "replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None) or []
    columns = [name.strip() for name in header[1:]]
    by_case: dict[str, dict[str, str | None]] = {}
    for record in reader:
        if not record or not record[0].strip():
            continue
        values = [*record[1:], *[""] * (len(columns) - len(record) + 1)]
        by_case[record[0].strip()] = {column: (values[i].strip() or None) for i, column in enumerate(columns)}
    return columns, by_case


def case_rows(submission: Submission) -> list[dict[str, Any]] | None:
    """The submission's rows joined with its phase's case metadata; None when the evaluation kept none.

    A metadata column overrides the row's key of the same name (attributes come from the host, never the
    participant); a case missing from the metadata gets None for every attribute.
    """
    rows = raw_rows(submission)
    if rows is None:
        return None
    columns, by_case = case_metadata(submission.phase)
    if not columns:
        return rows
    blank = dict.fromkeys(columns)
    return [{**row, **by_case.get(str(row["case_id"]), blank)} for row in rows]


def case_columns(submission: Submission) -> list[str]:
    """The columns :func:`case_rows` answers: the stored ones, then the metadata's not already among them."""
    stored = stored_cases(submission)
    if stored is None:
        return []
    columns = list(stored.columns)
    metadata, _ = case_metadata(submission.phase)
    return columns + [c for c in metadata if c not in columns]


def may_read_cases(user, submission: Submission) -> bool:
    """Per-case rows hold the reference labels: the challenge's hosts, its auditors (never for their own
    team's submission) and staff read them; nobody else, the submitting team included."""
    challenge = submission.phase.challenge
    if is_host(user, challenge):
        return True
    if not is_auditor(user, challenge):
        return False
    return not is_member(user, submission.participant_team)


def require_case_reader(user, submission: Submission) -> None:
    """:func:`may_read_cases` as the faces answer it: those who may not even see the submission are told it
    does not exist (404); the submitting team sees it, so it is told the rows are not theirs to read (403)."""
    if may_read_cases(user, submission):
        return
    if can_view(user, submission):
        raise Refusal(
            "forbidden",
            "per-case rows hold the reference labels; only the challenge's hosts and auditors may read them",
            403,
        )
    raise Refusal("not_found", "no such submission", 404)
