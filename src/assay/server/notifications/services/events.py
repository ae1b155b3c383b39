"""What happens after an evaluation or an approval: the team's e-mails, the challenge's webhooks, the hosts'
alert. The signal receivers only enqueue one task (one row in the sender's transaction: the worker's
``complete()`` stays short), or none for a result no one would hear of (a team whose members all turned
e-mails off, no webhook wanting it: asked of ``listeners``' per-process cache, no query); the task's
handler fans out, in one transaction, one task per e-mail and per webhook delivery, so each is retried on
its own. When the fan-out would be a single e-mail (a team of one,
no webhook: the common case), the evaluation's task sends it itself: its own retry then retries only that
e-mail, as the e-mail's task would, for one task row and one claim fewer per result."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from assay.server import tasks
from assay.server.challenges.models import Participation
from assay.server.challenges.services.read_versions import challenge_of_phase
from assay.server.prepared import Prepared
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import ResultReader
from assay.server.teams.models import ParticipantTeamMember

from . import failure_alert, listeners, webhooks
from .links import absolute
from .mail import queue_email, send_now
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


@tasks.handler(EVALUATED)
def evaluated(payload: dict) -> None:
    found = _submission_query().instances(id=int(payload["submission"]))
    sub = found[0] if found else None
    if sub is None or sub.status not in DONE:
        return  # deleted, or re-run since: the next outcome tells
    letters = [(member, *submission_email(sub, member)) for member in _members(sub.participant_team_id, emails=True)]
    event = "submission.failed" if sub.status == S.FAILED else "submission.finished"
    hooks = webhooks.wanting(sub, event)
    alone = len(letters) == 1 and not hooks  # the only delivery: a retry of this task repeats just it
    if hooks or sub.status == S.FAILED or len(letters) > 1:  # something to write: all or none (else no BEGIN)
        with transaction.atomic():
            webhooks.queue_deliveries(sub, event, payload.get("at") or timezone.now().isoformat(), hooks)
            if sub.status == S.FAILED:
                failure_alert.check(sub.phase.challenge)  # once per window: a retry of this task does not repeat it
            if not alone:
                for member, subject, body in letters:
                    queue_email(member, subject, body)
    if alone:
        send_now(*letters[0])


# The submission with what the e-mail names, compiled once per database (the ORM's building of this join costs
# more than the database's running it, on every result): run with the id; no row has a negative one. Not the
# host team's row: what reads the hosts (``is_host``, the failure alert) reads the challenge's host_team_id.
_SUBMISSION: dict[str, Prepared] = {}
_ID_MARK = -101


def _submission_query() -> Prepared:
    if connection.alias not in _SUBMISSION:
        qs = Submission.objects.select_related("phase__challenge", "participant_team").filter(pk=_ID_MARK)
        _SUBMISSION[connection.alias] = Prepared(qs[:1], id=_ID_MARK)
    return _SUBMISSION[connection.alias]


def _members(team_id: int, *, emails: bool = False) -> list:
    """The team's active members with an address (``emails``: only those who want submission e-mails, by
    a query compiled once: every result asks it)."""
    if emails:
        rows = _subscribers_query().instances(team=team_id)
    else:
        rows = _members_of(team_id)
    return [row.user for row in rows if row.user.email]


def _members_of(team_id: int):
    return ParticipantTeamMember.objects.filter(
        team_id=team_id, status=ParticipantTeamMember.Status.ACTIVE, user__is_active=True
    ).select_related("user")


_SUBSCRIBERS: dict[str, Prepared] = {}


def _subscribers_query() -> Prepared:
    if connection.alias not in _SUBSCRIBERS:
        qs = _members_of(_ID_MARK).filter(wanting_submission_emails("user")).order_by("pk")
        _SUBSCRIBERS[connection.alias] = Prepared(qs, team=_ID_MARK)
    return _SUBSCRIBERS[connection.alias]


def submission_email(sub: Submission, user) -> tuple[str, str]:
    """The plain-text e-mail about ``sub`` for ``user``: only the scores ``user`` may read (ResultReader)."""
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
        reader = ResultReader(user)
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
