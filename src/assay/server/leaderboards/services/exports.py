"""Exports: a leaderboard as CSV or JSON (exactly what the reader may see, every row, full precision),
and a phase's submissions as CSV with EvalAI's columns (``reference/evalai.md`` §3.4).

EvalAI's host export lists the submissions of *every* phase of the challenge although it is asked for
one phase; Assay's lists the phase asked for. Its header keeps EvalAI's spelling ("Affiliaton"), so
scripts written against EvalAI's file keep working. Text a participant chose (team and method names…)
that a spreadsheet would run as a formula gets a leading apostrophe (so does a header cell made from a
host's label). Confidence intervals come as ``<label> low`` / ``<label> high`` columns, empty where there is none.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder

from assay.evaluation.contract import UNDEFINED
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.roles import is_host, participation_of
from assay.server.spreadsheet import safe_text
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import ResultReader
from assay.server.teams.models import ParticipantTeamMember

from .errors import LeaderboardError
from .ranking import Board

HOST_COLUMNS = (
    "id", "Team Name", "Team Members", "Team Members Email Id", "Team Members Affiliaton", "Challenge Phase",
    "Status", "Created By", "Execution Time(sec.)", "Submission Number", "Submitted File", "Stdout File",
    "Stderr File", "Environment Log File", "Submitted At", "Submission Result File", "Submission Metadata File",
    "Method Name", "Method Description", "Publication URL", "Project URL", "Submission Meta Attributes",
)  # fmt: skip
PARTICIPANT_COLUMNS = (
    "Team Name", "Method Name", "Status", "Execution Time(sec.)", "Submitted File", "Result File",
    "Stdout File", "Stderr File", "Submitted At",
)  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line, produced lazily so a large export streams."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


def _n(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def leaderboard_table(board: Board) -> Iterator[list[Any]]:
    """Header then one list per row: the leaderboard as shown, numbers unrounded, missing ones empty,
    undefined ones (a NaN the script returned) "—" as on every other face."""
    labels = list(board.rules.labels)
    show = board.show_scores
    overall = board.overall is not None and board.overall.hidden is None
    title = (board.rules.aggregation or {}).get("title") or "Overall"
    header = ["rank", "team", "team_id", "baseline"]
    if show:
        header += [safe_text(x) for x in labels] + [safe_text(f"error_{x}") for x in labels]
        header += [safe_text(f"{x} {end}") for x in labels for end in ("low", "high")] + ["tied_with_leader"]
    if overall:
        header += [f"{title} rank"] + ([title] if show else [])
    if board.phase_split.show_execution_time:
        header.append("execution_time")
    header += ["method_name", "submission_id", "submitted_at", "is_public", "verified"]
    yield header
    for row in board.rows:
        line: list[Any] = ["" if row["rank"] is None else row["rank"], safe_text(row["team"]["name"])]
        line += [row["team"]["id"], "yes" if row["is_baseline"] else ""]
        if show:
            undefined = set(row.get("undefined") or ())
            line += [UNDEFINED if x in undefined else _n(row["scores"][x]) for x in labels]
            line += [_n(row["errors"][x]) for x in labels]
            line += [_n(row["intervals"][x][end]) if x in row["intervals"] else "" for x in labels for end in (0, 1)]
            line.append({True: "yes", False: "no"}.get(row["tied_with_leader"], ""))
        if overall:
            o = row["overall"]
            line += ["" if o["rank"] is None else o["rank"]] + ([_n(o["value"])] if show else [])
        if board.phase_split.show_execution_time:
            line.append(_n(row.get("execution_time")))
        sub = row["submission"]
        line += [safe_text(sub["method_name"]), sub["id"], sub["submitted_at"].isoformat()]
        line += ["yes" if sub["is_public"] else "", "yes" if sub["is_verified_by_host"] else ""]
        yield line


def leaderboard_document(board: Board) -> dict[str, Any]:
    return {**board.header(), "count": board.count, "results": board.rows}


def leaderboard_json(board: Board) -> str:
    return json.dumps(leaderboard_document(board), cls=DjangoJSONEncoder, ensure_ascii=False)


def _members(team_ids: Iterable[int]) -> dict[int, list[tuple[str, str, str]]]:
    """Team → [(username, e-mail, affiliation)] in one query."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    for m in ParticipantTeamMember.objects.filter(team_id__in=team_ids).select_related("user").order_by("pk"):
        try:
            affiliation = m.user.profile.affiliation
        except (ObjectDoesNotExist, AttributeError):
            affiliation = ""
        out.setdefault(m.team_id, []).append((m.user.username, m.user.email, affiliation))
    return out


def _seconds(sub: Submission) -> str:
    return _n(sub.execution_time)


def submissions_table(user, phase: ChallengePhase) -> Iterator[list[Any]]:
    """Hosts: every submission of the phase with EvalAI's host columns. A participant: its team's
    submissions (not the ones it hid) with EvalAI's participant columns. Anyone else: refused."""
    challenge = phase.challenge
    subs = Submission.objects.filter(phase=phase).select_related("participant_team", "created_by", "phase__challenge")
    reader = ResultReader(user)
    if is_host(user, challenge):
        team_ids = subs.values_list("participant_team_id", flat=True).distinct()
        members = _members(team_ids)
        return _host_rows(subs.order_by("-submitted_at", "-id"), members, phase, reader)
    participation = participation_of(user, challenge)
    if participation is None:
        raise LeaderboardError("forbidden", "you are neither a host nor a participant of this challenge", 403)
    own = subs.filter(participant_team_id=participation.team_id, ignore_submission=False)
    return _participant_rows(own.order_by("-submitted_at", "-id"), reader)


def _host_rows(subs, members, phase: ChallengePhase, reader: ResultReader) -> Iterator[list[Any]]:
    yield list(HOST_COLUMNS)
    for s in subs.iterator(chunk_size=2000):
        team = members.get(s.participant_team_id, [])
        meta = json.dumps(s.submission_metadata, ensure_ascii=False) if s.submission_metadata else ""
        yield [
            s.pk,
            safe_text(s.participant_team.name),
            safe_text(",".join(m[0] for m in team)),
            safe_text(",".join(m[1] for m in team)),
            safe_text(",".join(m[2] for m in team)),
            safe_text(phase.name),
            s.status,
            safe_text(s.created_by.username),
            _seconds(s),
            s.submission_number,
            s.input_file.name or "",
            s.stdout_file.name or "",
            s.stderr_file.name or "",
            "",  # EvalAI's environment log (code-upload challenges); Assay keeps none yet
            s.submitted_at.isoformat(),
            s.submission_result_file.name if reader.may_read_result(s) else "",
            s.submission_metadata_file.name if reader.may_read_metadata(s) else "",
            safe_text(s.method_name),
            safe_text(s.method_description),
            safe_text(s.publication_url),
            safe_text(s.project_url),
            safe_text(meta),
        ]


def _participant_rows(subs, reader: ResultReader) -> Iterator[list[Any]]:
    yield list(PARTICIPANT_COLUMNS)
    for s in subs.iterator(chunk_size=2000):
        yield [
            safe_text(s.participant_team.name),
            safe_text(s.method_name),
            s.status,
            _seconds(s),
            s.input_file.name or "",
            s.submission_result_file.name if reader.may_read_result(s) else "",
            s.stdout_file.name or "",
            s.stderr_file.name or "",
            s.submitted_at.isoformat(),
        ]
