"""What one reader may see of a submission and its results: the one place of who may see a submission
(:meth:`ResultReader.may_view`: its team's active members, the challenge's hosts, staff; ``access.can_view`` asks
it) and the one place where hidden splits are cut.

Every face (web pages, /api/v1, the EvalAI-compatible API, signed file URLs, exports) asks a
:class:`ResultReader`, so a hidden split's scores cannot reach a participant through a copy that
forgot the rule. The rule for a split is ``effective_visibility`` (challenges), applied per reader:

* the challenge's hosts (and staff) see every split, the result document and the metadata file;
* the submission's own team (active members) sees the splits of visibility 2 and 3;
* anyone else sees the visibility-3 splits of a public submission of a listed challenge's public phase;
* a split the phase no longer has counts as hidden (fail closed).

The result document (``submission_result_file``) is the script's ``submission_result`` (or, without
one, the splits' numbers). EvalAI shows it to participants ("Result file", ``reference/evalai.md``
§2.3), and so does Assay while no split of the phase is hidden from the reader. A free-form
document cannot be cut and may quote hidden scores (one real challenge returns its test split's
numbers there), so a reader from whom a split is hidden gets instead the document of the splits they
see (``[{split: {label: number}}]``, as ``output.result``); the hosts read the script's own.
The metadata file (``submission_metadata``) is for hosts only, as in EvalAI. Logs (stdout, stderr) go
to whoever :meth:`ResultReader.may_read_logs` allows, with the server's folders taken out for all but hosts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.challenges.services.listing import challenge_listed, effective_visibility
from assay.server.challenges.services.roles import is_host
from assay.server.prepared import Prepared
from assay.server.teams.models import ParticipantTeamMember, active_membership

from ..models import Submission, SubmissionAttempt
from . import retention
from .errors import SubmissionError
from .log_text import without_server_paths

V = ChallengePhaseSplit.Visibility
LOG_FIELDS = ("stdout_file", "stderr_file")
HOST, TEAM, PUBLIC, NOBODY = 0, int(V.OWNER_AND_HOST), int(V.PUBLIC), 99  # least visibility a reader sees


@dataclass(frozen=True)
class ResultAccess:
    """One reader's view of one submission: the splits whose numbers they see."""

    threshold: int  # HOST, TEAM, PUBLIC or NOBODY
    splits: frozenset[str]  # codenames this reader sees
    cut: bool  # some split of the phase is hidden from this reader

    @property
    def is_host(self) -> bool:
        return self.threshold == HOST


# The reader's two questions, compiled once per database (assay.server.prepared): every submission shown to a
# participant, on every face, asks them; the ORM took longer to build them than the database to answer.
_QUERIES: dict[tuple[str, str], Prepared] = {}
_MARK, _USER_MARK = -101, -102  # stand-ins: no row has a negative id


def _query(name: str) -> Prepared:
    key = (connection.alias, name)
    if key not in _QUERIES:
        if name == "member":
            qs = ParticipantTeamMember.objects.filter(active_membership(team_id=_MARK, user_id=_USER_MARK))
            _QUERIES[key] = Prepared(qs.values_list("pk", flat=True)[:1], team=_MARK, user=_USER_MARK)
        else:
            qs = ChallengePhaseSplit.objects.filter(phase_id=_MARK).select_related("dataset_split")
            _QUERIES[key] = Prepared(qs, phase=_MARK)
    return _QUERIES[key]


class ResultReader:
    """Cuts submissions for one reader; remembers roles and splits per challenge/phase (lists stay cheap)."""

    def __init__(self, user) -> None:
        self.user = user
        self._hosts: dict[int, bool] = {}
        self._teams: dict[int, bool] = {}
        self._splits: dict[int, dict[str, int]] = {}

    # --- who the reader is to this submission -----------------------------------------------------------

    def role(self, sub: Submission) -> int:
        """HOST (the challenge's hosts, staff), TEAM (an active member of its team) or NOBODY, remembered per
        challenge and team: the rule of who may see a submission, whatever its publicity."""
        challenge_id = sub.phase.challenge_id
        if challenge_id not in self._hosts:
            self._hosts[challenge_id] = is_host(self.user, sub.phase.challenge)
        if self._hosts[challenge_id]:
            return HOST
        return TEAM if self._member_of(sub.participant_team_id) else NOBODY

    def threshold(self, sub: Submission) -> int:
        """The least split visibility this reader sees of ``sub``: its :meth:`role`, or PUBLIC for anyone else
        when the submission, its phase and its challenge are public."""
        role = self.role(sub)
        if role == NOBODY and sub.is_public and sub.phase.is_public and challenge_listed(sub.phase.challenge):
            return PUBLIC
        return role

    def _member_of(self, team_id: int) -> bool:
        if not getattr(self.user, "is_authenticated", False):
            return False
        if team_id not in self._teams:
            self._teams[team_id] = bool(_query("member").rows(team=team_id, user=self.user.pk))
        return self._teams[team_id]

    def _visibilities(self, phase_id: int) -> dict[str, int]:
        if phase_id not in self._splits:
            rows = _query("splits").instances(phase=phase_id)
            self._splits[phase_id] = {ps.dataset_split.codename: effective_visibility(ps) for ps in rows}
        return self._splits[phase_id]

    def access(self, sub: Submission) -> ResultAccess:
        threshold = self.threshold(sub)
        visibilities = self._visibilities(sub.phase_id)
        seen = frozenset(name for name, v in visibilities.items() if threshold == HOST or v >= threshold)
        return ResultAccess(threshold, seen, threshold != HOST and seen != frozenset(visibilities))

    # --- what they see -------------------------------------------------------------------------------
    # ``evaluation``: an earlier evaluation of ``sub`` a host's re-run kept (its output and files); the
    # reader's rights are still ``sub``'s (its phase, team and visibility), so one rule cuts every evaluation.

    def output(self, sub: Submission, evaluation: Evaluated | None = None) -> dict | None:
        """``sub.output`` with only the splits this reader sees (``result`` and ``error`` lists alike)."""
        held = (evaluation or sub).output
        if not isinstance(held, dict):
            return None
        access = self.access(sub)
        if access.is_host:
            return held
        return {key: _cut(value, access.splits) if key in ("result", "error") else value
                for key, value in held.items()}  # fmt: skip

    def result(self, sub: Submission, evaluation: Evaluated | None = None) -> list:
        """The visible ``output.result`` list (``[]`` when there is none)."""
        out = self.output(sub, evaluation)
        return list(out.get("result") or []) if isinstance(out, dict) else []

    def may_read_metadata(self, sub: Submission, evaluation: Evaluated | None = None) -> bool:
        return bool((evaluation or sub).submission_metadata_file) and self.threshold(sub) == HOST

    def result_document(self, sub: Submission, evaluation: Evaluated | None = None) -> bytes:
        """The result file as this reader may read it; raises :class:`SubmissionError` (404)."""
        held = evaluation or sub
        access = self.access(sub)
        if access.threshold == NOBODY:
            raise SubmissionError("not_found", "no such submission", 404)
        if not held.submission_result_file:
            raise SubmissionError("not_ready", f"this evaluation has no result (it is {held.status})", 404)
        if access.cut:  # never the script's free-form document: it may quote the hidden splits
            return json.dumps(self.result(sub, evaluation), indent=2).encode()
        with held.submission_result_file.open("rb") as fh:
            return fh.read()

    def log_document(self, sub: Submission, field: str, evaluation: Evaluated | None = None) -> bytes:
        """stdout or stderr as this reader may read it: hosts the stored text, the team without the server's
        folders (they say how the evaluation host is laid out); raises :class:`SubmissionError`."""
        if field not in LOG_FIELDS or not self.may_read_logs(sub):
            raise SubmissionError("forbidden", "the host has disabled logs for this phase", 403)
        held = evaluation or sub
        stored = getattr(held, field)
        _require_kept(sub, held, field)
        if not stored:
            raise SubmissionError("not_ready", f"this evaluation has no log (it is {held.status})", 404)
        with stored.open("rb") as fh:
            body = fh.read()
        if self.threshold(sub) == HOST:
            return body
        return without_server_paths(body.decode("utf-8", "replace")).encode()

    def hosts(self, sub: Submission) -> bool:
        """Whether the reader hosts ``sub``'s challenge (or is staff): ``roles.is_host``, remembered."""
        return self.role(sub) == HOST

    def may_view(self, sub: Submission) -> bool:
        """Whether the reader may see ``sub`` at all (its page, files, actions): the one rule, which
        :func:`~.access.can_view` asks too. Public readers of a public submission see its public splits on the
        leaderboard, not the submission."""
        return self.role(sub) != NOBODY

    def may_read_logs(self, sub: Submission) -> bool:
        """stdout and stderr of every evaluation of ``sub``: hosts always, its team as the phase says
        (:func:`participants_see_logs`)."""
        role = self.role(sub)
        return role == HOST or (role == TEAM and participants_see_logs(sub.phase))

    def document(self, sub: Submission, field: str, evaluation: Evaluated | None = None) -> bytes:
        """The result file or a log, cut for this reader (what a signed per-reader URL serves)."""
        if field == "submission_result_file":
            return self.result_document(sub, evaluation)
        return self.log_document(sub, field, evaluation)

    def may_read_result(self, sub: Submission, evaluation: Evaluated | None = None) -> bool:
        return bool((evaluation or sub).submission_result_file) and self.threshold(sub) != NOBODY


def participants_see_logs(phase) -> bool:
    """Whether a phase shows its participants their logs. A phase hides them with ``disable_logs``, and always
    in a docker-based challenge: there the participant's own code reads the test inputs (or plays the host's
    environment), so anything it prints could carry hidden data out (Grand Challenge's rule). Participants still
    get the failure reason, which is written from the engine's facts only (exit code, time or memory limit)."""
    return not phase.disable_logs and not phase.challenge.is_docker_based


#: What holds an evaluation's output and files: the submission (its current one) or a kept earlier one.
Evaluated = Submission | SubmissionAttempt


def _require_kept(sub: Submission, held: Evaluated, field: str) -> None:
    """A log the retention policy removed (an earlier evaluation's go with the submission's own): 410 saying
    when and why (``retention.require_kept``'s answer), not a 404."""
    if held is sub:
        retention.require_kept(sub, field)
    elif sub.files_removed_at is not None and not getattr(held, field):
        raise SubmissionError("removed_by_retention", retention.removed_note(sub), 410)


def _cut(items: Any, splits: frozenset[str]) -> list:
    """``[{split: {...}}, …]`` keeping only ``splits``; anything not in that shape is dropped (fail closed)."""
    if not isinstance(items, list):
        return []
    kept = []
    for item in items:
        if isinstance(item, dict):
            part = {name: value for name, value in item.items() if name in splits}
            if part:
                kept.append(part)
    return kept
