"""What happens after an evaluation or an approval: the team's e-mails, the challenge's webhooks, the hosts'
alert. The signal receivers only enqueue one task (one row in the sender's transaction: the worker's
``complete()`` stays short), or none for a result no one would hear of (a team whose members all turned
e-mails off, no webhook wanting it: asked of ``listeners``' per-process cache, no query); the task's
handler fans out, in one transaction, one task per e-mail and per webhook delivery, so each is retried on
its own. When the fan-out would be a single e-mail (a team of one,
no webhook: the common case), the evaluation's task sends it itself: its own retry then retries only that
e-mail, as the e-mail's task would, for one task row and one claim fewer per result. The handler is a batch
handler: a busy worker's results' tasks run together (one read of their submissions, one of their subscribers,
one mail connection), each with its own outcome."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from assay.server import tasks
from assay.server.challenges.models import Participation
from assay.server.challenges.services.read_versions import challenge_of_phase
from assay.server.prepared import Prepared
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import ResultReader
from assay.server.teams.models import ParticipantTeamMember, active_membership

from . import failure_alert, listeners, webhooks
from .links import absolute
from .mail import queue_email, send_each
from .preferences import wanting_submission_emails

S = Submission.Status
EVALUATED = "notifications.evaluated"
APPROVED = "notifications.approved"
DONE = (S.FINISHED, S.PARTIALLY_EVALUATED, S.FAILED)


def on_evaluated(sender, submission: Submission, failure: str | None = None, **kwargs) -> None:
    """``submissions.signals.evaluated``: an attempt's outcome was recorded. No task when no one listens."""
    if submission.status in DONE and _listened(submission):
        tasks.enqueue(EVALUATED, {"submission": submission.pk, "at": timezone.now().isoformat()})


def _listened(sub: Submission) -> bool:
    """Whether the evaluation's task would tell anyone: a failure always (the hosts' "keeps failing" check
    counts it), a result when its team has a member who wants e-mails or a webhook wants the event. Asked of
    the per-process ``listeners`` (no query), erring towards a task."""
    if sub.status == S.FAILED:
        return True
    who = listeners.current()
    if sub.participant_team_id not in who.silent_teams:
        return True
    challenge_id = challenge_of_phase(sub.phase_id)
    return challenge_id is None or who.wants(challenge_id, "submission.finished")


def on_participation_approved(sender, participation: Participation, **kwargs) -> None:
    """``challenges.signals.participation_approved``: a host approved a team."""
    tasks.enqueue(APPROVED, {"participation": participation.pk})


@tasks.handler(EVALUATED, batch=True)
def evaluated(payloads: list[dict]) -> list[BaseException | None]:
    """The evaluations' tasks the runner took together: their submissions read by one query, their teams'
    subscribers by one, a reader's rights (``ResultReader``) read once per recipient, the webhooks once per
    challenge, and the e-mails each task sends itself over one mail connection. Each task's outcome is its own
    (a task whose e-mail failed is retried alone), as when it ran alone."""
    outcomes: list[BaseException | None] = [None] * len(payloads)
    ids: list[int | None] = []
    for i, payload in enumerate(payloads):
        try:
            ids.append(int(payload["submission"]))
        except (KeyError, TypeError, ValueError) as exc:
            ids.append(None)
            outcomes[i] = exc
    subs = _submissions([pk for pk in ids if pk is not None])
    subscribers = _subscribers({sub.participant_team_id for sub in subs.values() if sub.status in DONE})
    shared = _Shared(subscribers)
    alone: list[tuple[int, tuple]] = []
    for i, (payload, pk) in enumerate(zip(payloads, ids, strict=True)):
        if pk is None:
            continue
        try:
            letter = _fan_out(subs.get(pk), payload, shared)
        except Exception as exc:  # noqa: BLE001 - this task is retried, the others' outcomes stand
            outcomes[i] = exc
            continue
        if letter is not None:
            alone.append((i, letter))
    for (i, _letter), outcome in zip(alone, send_each([letter for _i, letter in alone]), strict=True):
        outcomes[i] = outcome
    return outcomes


class _Shared:
    """What the tasks of one batch read once: the teams' subscribers, a ResultReader per recipient (its roles and
    the phase's splits remembered), the webhooks per challenge and event."""

    def __init__(self, subscribers: dict[int, list]) -> None:
        self.subscribers = subscribers
        self.readers: dict[int, ResultReader] = {}
        self.hooks: dict[tuple[int, str], list] = {}

    def reader(self, user) -> ResultReader:
        if user.pk not in self.readers:
            self.readers[user.pk] = ResultReader(user)
        return self.readers[user.pk]

    def wanting(self, sub: Submission, event: str) -> list:
        key = (sub.phase.challenge_id, event)
        if key not in self.hooks:
            self.hooks[key] = webhooks.wanting(sub, event)
        return self.hooks[key]


def _fan_out(sub: Submission | None, payload: dict, shared: _Shared) -> tuple | None:
    """One evaluation's task: queue its deliveries, e-mails and the failure check (in one transaction, only when
    there is something to write), or answer its only delivery, the letter to send, as ``(user, subject, body)``."""
    if sub is None or sub.status not in DONE:
        return None  # deleted, or re-run since: the next outcome tells
    letters = [
        (member, *submission_email(sub, member, shared.reader(member)))
        for member in shared.subscribers.get(sub.participant_team_id, ())
    ]
    event = "submission.failed" if sub.status == S.FAILED else "submission.finished"
    hooks = shared.wanting(sub, event)
    alone = len(letters) == 1 and not hooks  # the only delivery: a retry of this task repeats just it
    if hooks or sub.status == S.FAILED or len(letters) > 1:  # something to write: all or none (else no BEGIN)
        with transaction.atomic():
            webhooks.queue_deliveries(sub, event, payload.get("at") or timezone.now().isoformat(), hooks)
            if sub.status == S.FAILED:
                failure_alert.check(sub.phase.challenge)  # once per window: a retry of this task does not repeat it
            if not alone:
                for member, subject, body in letters:
                    queue_email(member, subject, body)
    return letters[0] if alone else None


# The submissions with what the e-mail names, and the teams' members who want the e-mail, each compiled once per
# database and number of ids (the ORM's building of these joins costs more than the database's running them): run
# with the ids, a list padded to 1, 2, 4, 8 or 16 by repeating its last id (IN ignores repeats), so at most five
# compiled forms each. Not the host team's row: what reads the hosts (``is_host``, the failure alert) reads the
# challenge's host_team_id. No row has a negative id: the stand-ins.
_SUBMISSIONS: dict[tuple[str, int], Prepared] = {}
_SUBSCRIBERS: dict[tuple[str, int], Prepared] = {}
_ID_MARK = -101
_SIZES = (1, 2, 4, 8, 16)


def _chunks(ids: list[int]) -> list[list[int]]:
    """``ids`` without repeats, in lists of at most 16, each padded to one of :data:`_SIZES`."""
    unique = list(dict.fromkeys(ids))
    chunks = []
    for at in range(0, len(unique), _SIZES[-1]):
        chunk = unique[at : at + _SIZES[-1]]
        size = next(n for n in _SIZES if n >= len(chunk))
        chunks.append(chunk + [chunk[-1]] * (size - len(chunk)))
    return chunks


def _marks(size: int) -> dict[str, int]:
    return {f"id{k}": _ID_MARK - k for k in range(size)}


def _submissions(ids: list[int]) -> dict[int, Submission]:
    """The submissions of ``ids`` that exist, by id, with their phase, challenge and team."""
    found: dict[int, Submission] = {}
    for chunk in _chunks(ids):
        key = (connection.alias, len(chunk))
        if key not in _SUBMISSIONS:
            marks = _marks(len(chunk))
            qs = Submission.objects.select_related("phase__challenge", "participant_team")
            _SUBMISSIONS[key] = Prepared(qs.filter(pk__in=list(marks.values())), **marks)
        values = {f"id{k}": pk for k, pk in enumerate(chunk)}
        found.update((sub.pk, sub) for sub in _SUBMISSIONS[key].instances(**values))
    return found


def _subscribers(team_ids: set[int]) -> dict[int, list]:
    """Each team's active members with an address who want submission e-mails, in membership order."""
    found: dict[int, list] = {}
    for chunk in _chunks(sorted(team_ids)):
        key = (connection.alias, len(chunk))
        if key not in _SUBSCRIBERS:
            marks = _marks(len(chunk))
            qs = ParticipantTeamMember.objects.filter(
                active_membership(team_id__in=list(marks.values()), user__is_active=True)
            )
            qs = qs.select_related("user").filter(wanting_submission_emails("user")).order_by("pk")
            _SUBSCRIBERS[key] = Prepared(qs, **marks)
        values = {f"id{k}": pk for k, pk in enumerate(chunk)}
        for row in _SUBSCRIBERS[key].instances(**values):
            if row.user.email:
                found.setdefault(row.team_id, []).append(row.user)
    return found


def _members(team_id: int) -> list:
    """The team's active members with an address (an approval's e-mail)."""
    rows = ParticipantTeamMember.objects.filter(active_membership(team_id=team_id, user__is_active=True))
    rows = rows.select_related("user")
    return [row.user for row in rows if row.user.email]


def submission_email(sub: Submission, user, reader: ResultReader | None = None) -> tuple[str, str]:
    """The plain-text e-mail about ``sub`` for ``user``: only the scores ``user`` may read (``reader``, a
    ResultReader of ``user``'s that may remember their roles and the phase's splits)."""
    challenge = sub.phase.challenge
    team = sub.participant_team.name
    outcome = "failed" if sub.status == S.FAILED else "was evaluated"
    lines = [
        f"Hello {user.get_username()},",
        "",
        f"Submission {sub.pk} of team {team} to {challenge.title} (phase {sub.phase.name}) {outcome}.",
        "",
    ]
    if sub.status == S.FAILED:
        lines += ["What went wrong:", _indent(sub.failure_reason[:1000] or "(no reason was given)"), ""]
    else:
        reader = reader or ResultReader(user)
        shown = reader.result(sub)
        if shown:
            lines.append("Scores:")
            for entry in shown:
                for split, metrics in entry.items():
                    numbers = ", ".join(
                        f"{label} = {value}" for label, value in sorted((metrics or {}).items())
                    )  # one order on every database
                    lines.append(f"  {split}: {numbers}")
        if reader.access(sub).cut:
            lines.append("The scores of splits the host keeps hidden are not shown.")
        lines.append("")
    lines += [
        f"See it: {absolute('web:my-submissions', challenge.pk)}",
        "",
        "--",
        f"You get this e-mail because you are in team {team}.",
        f"Turn these e-mails off on your account's notifications page: {absolute('web:notification-settings')}",
    ]
    subject = f"[Assay] {challenge.title}: submission {sub.pk} {outcome}"
    return subject, "\n".join(lines) + "\n"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


@tasks.handler(APPROVED)
def approved(payload: dict) -> None:
    row = Participation.objects.select_related("challenge", "team").filter(pk=payload["participation"]).first()
    if row is None or row.status != Participation.Status.APPROVED:
        return  # removed or disapproved again since
    challenge = row.challenge
    with transaction.atomic():
        for member in _members(row.team_id):
            body = "\n".join(
                [
                    f"Hello {member.get_username()},",
                    "",
                    f"The hosts of {challenge.title} approved team {row.team.name}: you may submit now.",
                    "",
                    f"The challenge: {absolute('web:challenge', challenge.pk)}",
                ]
            )
            queue_email(member, f"[Assay] {challenge.title}: team {row.team.name} approved", body + "\n")
