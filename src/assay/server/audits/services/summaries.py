"""A submission's audit summary: computed from its per-case rows once its results are recorded, stored as
:class:`AuditSummary`, and its intervals set beside the leaderboard scores the phase's ``audit.intervals`` names.

The results come first: the summary is a background task (``audits.summarise``, on the task runner)
enqueued in the transaction that records them, so it runs once they have committed. A bootstrap of
seconds must neither hold that transaction nor the worker's ``complete`` answer, and its failure cannot
undo a result. A computation that fails is stored as the summary's ``error``, so hosts and auditors see
why the figures are missing; a database that fails under it is retried by the runner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from assay.server import tasks
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.phase_rules import phase_with_challenge, split_rules
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.intervals import set_intervals
from assay.server.submissions.models import Submission, SubmissionCases
from assay.server.submissions.services.cases import case_rows

from ..models import AuditSummary
from . import trail

log = logging.getLogger("assay.server")
ACTOR = "assay"  # the platform, not a person, computes and records these
SUMMARISE = "audits.summarise"  # the task; its payload is {"submission": pk}


def sha256_json(value: Any) -> str:
    """Of the canonical JSON (sorted keys, no spaces): the same settings give the same hash on every database."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def on_scored(sender, *, submission: Submission, splits: Mapping[str, Any], **kwargs) -> None:
    """``submissions.signals.scored``: in an audited phase, record the evaluation (and its rows) on the trail
    in the result's transaction, and enqueue the summary's task. Never raises: an audit problem must not
    undo the result."""
    try:
        phase = phase_with_challenge(submission.phase_id)  # cached per process: no query per result
        if phase is None or not phase.audit:
            return
        completed_at = submission.completed_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
        payload = {"status": submission.status, "splits": sorted(splits), "completed_at": completed_at}
        trail.append(submission, "evaluated", ACTOR, payload)
        stored = SubmissionCases.objects.filter(submission_id=submission.pk).values("count", "sha256").first()
        if stored is not None:
            trail.append(submission, "cases_stored", ACTOR, {"count": stored["count"], "sha256": stored["sha256"]})
    except Exception:
        log.exception("audit: recording the evaluation of submission %s on its trail failed", submission.pk)
        return
    tasks.enqueue(SUMMARISE, {"submission": submission.pk}, max_attempts=5)


def summarise_task(payload: dict) -> None:
    """The ``audits.summarise`` task: a submission deleted since has nothing to summarise."""
    submission = Submission.objects.select_related("phase").filter(pk=payload.get("submission")).first()
    if submission is not None:
        summarise_submission(submission)


def summarise_submission(submission: Submission) -> AuditSummary | None:
    """Compute and store ``submission``'s summary and set its leaderboard intervals; None when its phase
    has no audit or the evaluation kept no per-case rows. A computation that fails is stored with ``error``."""
    settings = ChallengePhase.objects.filter(pk=submission.phase_id).values_list("audit", flat=True).first()
    stored = SubmissionCases.objects.filter(submission_id=submission.pk).first()
    if not settings or stored is None:
        return None
    # read afresh: the caller's instance may hold a phase from before its case metadata changed
    submission = Submission.objects.select_related("phase").get(pk=submission.pk)
    rows = case_rows(submission)
    if rows is None:
        return None
    document = _document(settings, rows, submission.pk)
    with transaction.atomic():
        summary, _ = AuditSummary.objects.update_or_create(
            submission=submission,
            defaults={
                "document": document,
                "settings_sha256": sha256_json(settings),
                "cases_sha256": stored.sha256,
            },
        )
        payload = {
            "summary_sha256": sha256_json(document),
            "settings_sha256": summary.settings_sha256,
            "cases_sha256": summary.cases_sha256,
        }
        if "error" in document:
            payload["error"] = document["error"][:500]
        trail.append(submission, "summarised", ACTOR, payload)
        if "error" not in document:
            _set_intervals(submission, settings, document)
    return summary


def _document(settings: Mapping[str, Any], rows: list[dict[str, Any]], pk: int) -> dict[str, Any]:
    """The summary document, or ``{"error": why, ...}``: malformed rows or settings are named, anything else
    is logged with its traceback and told as an internal error."""
    failed = {"task": settings.get("task"), "n": len(rows), "settings": dict(settings)}
    try:
        from assay.audit import AuditInputError, summarise
    except ImportError as exc:  # the server was installed without the audit extra
        log.error("audit: submission %s cannot be summarised: %s", pk, exc)
        return {**failed, "error": "the server lacks the audit metrics (install assay[audit])"}
    try:
        return summarise(settings, rows)
    except AuditInputError as exc:
        log.warning("audit: submission %s: %s", pk, exc)
        return {**failed, "error": str(exc)[:2000]}
    except Exception:
        log.exception("audit: computing the summary of submission %s failed", pk)
        return {**failed, "error": "the audit figures could not be computed (an internal error; see the server log)"}


def intervals_by_split(submission: Submission, settings: Mapping[str, Any], document: Mapping[str, Any]):
    """``{split codename: {label: [low, high]}}`` for every split the submission has entries on, from the
    figures ``audit.intervals`` names (a label the split's board lacks, or a figure without interval, is left out)."""
    from assay.audit import interval

    mapping = settings.get("intervals") or {}
    codenames = set(
        LeaderboardEntry.objects.filter(submission=submission, is_disabled=False).values_list(
            "phase_split__dataset_split__codename", flat=True
        )
    )
    out: dict[str, dict[str, list[float]]] = {}
    for rule in split_rules(submission.phase_id):
        if rule.codename not in codenames:
            continue
        for label, figure in mapping.items():
            found = interval(document, figure)
            if found is not None and label in rule.labels:
                out.setdefault(rule.codename, {})[label] = [found[0], found[1]]
    return out


def _set_intervals(submission: Submission, settings: Mapping[str, Any], document: Mapping[str, Any]) -> None:
    by_split = intervals_by_split(submission, settings, document)
    if not by_split:
        return
    try:
        set_intervals(submission, by_split)
    except LeaderboardError as exc:  # checked before anything is written: the summary stays
        log.warning("audit: the intervals of submission %s were refused: %s", submission.pk, exc)
