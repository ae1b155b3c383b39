"""A submission's journey in log lines and metrics, from the submissions app's signals.

Each line about a submission carries the id of the request that submitted it (``Submission.request_id``,
stamped here when the row is first saved), its submission, challenge and phase ids, and an ``event``:
``submission.submitted``, ``submission.claimed``, ``submission.leaderboard`` (its entries placed) and
``submission.evaluated``. The receivers run inside the sender's transaction; lines and metrics are written
when it commits (a refused claim or result logs nothing), and never raise into it (``robust``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save, pre_save

from assay.server.challenges.services.phase_rules import phase_with_challenge
from assay.server.submissions import signals
from assay.server.submissions.models import Submission

from .context import current_request_id, new_request_id
from .metrics import CLAIM_WAIT, EVALUATION, FAILURES

log = logging.getLogger("assay.server.submissions")


def connect() -> None:
    pre_save.connect(stamp_request_id, sender=Submission, dispatch_uid="observability-request-id")
    post_save.connect(on_saved, sender=Submission, dispatch_uid="observability-submitted")
    signals.claimed.connect(on_claimed, dispatch_uid="observability-claimed")
    signals.scored.connect(on_scored, dispatch_uid="observability-scored")
    signals.evaluated.connect(on_evaluated, dispatch_uid="observability-evaluated")


def stamp_request_id(sender, instance: Submission, **kwargs) -> None:
    """A new row (a submission, a re-run's clone) takes the id of the request creating it; made outside a
    request (a command, the demo's seed) it gets a fresh one, unless its creator named one."""
    if instance.pk is None:
        instance.request_id = current_request_id() or instance.request_id or new_request_id()


def fields(sub: Submission, event: str) -> dict[str, Any]:
    """The ``extra`` of a line about ``sub`` (:mod:`.logs` writes them as JSON fields)."""
    if Submission.phase.is_cached(sub):
        challenge_id = sub.phase.challenge_id
    else:
        phase = phase_with_challenge(sub.phase_id)  # cached per process: no query on the hot path
        challenge_id = phase.challenge_id if phase is not None else None
    return {
        "event": event,
        "submission_id": sub.pk,
        "challenge_id": challenge_id,
        "phase_id": sub.phase_id,
        "request_id": sub.request_id or None,
    }


def _at_commit(write: Callable[[], None]) -> None:
    transaction.on_commit(write, robust=True)


def on_saved(sender, instance: Submission, created: bool = False, **kwargs) -> None:
    if created and log.isEnabledFor(logging.INFO):  # a line only: nothing to prepare when none is written
        extra = fields(instance, "submission.submitted")
        message = "submission %s submitted by team %s (%s)"
        args = (instance.pk, instance.participant_team_id, instance.status)
        _at_commit(partial(log.info, message, *args, extra=extra))


def on_claimed(sender, *, submission: Submission, **kwargs) -> None:
    sub = submission
    logged = log.isEnabledFor(logging.INFO)  # the metric is counted either way; the line's fields only if written
    extra = fields(sub, "submission.claimed") if logged else None
    args = (sub.pk, sub.attempt, sub.lease_owner, sub.queue_name)
    wait = None
    if sub.attempt == 1 and sub.started_at is not None:  # a job's first claim (a re-run's clone starts again)
        queued_at = max(sub.submitted_at, sub.rerun_resumed_at or sub.submitted_at)
        wait = max((sub.started_at - queued_at).total_seconds(), 0.0)
    queue = sub.queue_name

    def write() -> None:
        if wait is not None:
            CLAIM_WAIT.labels(queue=queue).observe(wait)
        if logged:
            log.info("submission %s claimed (attempt %s) by worker %s of queue %s", *args, extra=extra)

    _at_commit(write)


def on_scored(sender, *, submission: Submission, splits: Mapping[str, Any], **kwargs) -> None:
    """Connected after the leaderboards' receiver: the entries are written when this runs."""
    if not log.isEnabledFor(logging.INFO):
        return
    extra = fields(submission, "submission.leaderboard")
    names = ", ".join(sorted(splits)) or "none"
    _at_commit(
        partial(log.info, "submission %s: leaderboard entries placed (splits: %s)", submission.pk, names, extra=extra)
    )


def on_evaluated(sender, *, submission: Submission, failure: str | None, **kwargs) -> None:
    sub = submission
    level = logging.WARNING if failure == "lost" else logging.INFO
    logged = log.isEnabledFor(level)
    extra = fields(sub, "submission.evaluated") if logged else None
    pk, queue, outcome, reason = sub.pk, sub.queue_name, str(sub.status), sub.failure_reason[:500]
    seconds = None
    if failure != "lost" and sub.started_at is not None and sub.completed_at is not None:
        seconds = max((sub.completed_at - sub.started_at).total_seconds(), 0.0)

    def write() -> None:
        if failure is not None:
            FAILURES.labels(queue=queue, reason=failure).inc()
        if seconds is not None:
            EVALUATION.labels(queue=queue, outcome=outcome).observe(seconds)
        if not logged:
            return
        took = f" after {seconds:.1f} s" if seconds is not None else ""
        if failure is None:
            log.info("submission %s %s%s", pk, outcome, took, extra=extra)
        else:
            log.log(level, "submission %s failed (%s)%s: %s", pk, failure, took, reason, extra=extra)

    _at_commit(write)
