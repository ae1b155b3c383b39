"""What a submission's evaluation was scored against: the annotation file (by SHA-256) and the data package
version its phase pinned when a worker was handed the job.

Recorded at the claim (:func:`record`, inside the claim's own UPDATE: no statement of its own), so a host who
re-pins the phase to a new package version, or re-imports the bundle with new annotations, after the
evaluation changes nothing of what an audit's manifest or the submission's page names. A host's re-run in
place keeps the earlier evaluation's record on its :class:`~assay.server.submissions.models.SubmissionAttempt`
and records its own at its claim. Submissions claimed before this was kept fall back to the phase's current
data, and say so (``recorded: False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.server.challenges.services.roles import is_host
from assay.server.data_packages.models import DataPackageVersion
from assay.server.data_packages.services.access import can_view

from ..models import Submission, SubmissionAttempt

#: The fields a claim writes (added to its ``update_fields``) and a re-run copies to its attempt.
FIELDS = ("scored_annotation_sha256", "scored_package_version")


def record(sub: Submission) -> None:
    """Set on ``sub``, unsaved (the claim's save writes them), what its worker is handed now: read from the
    phase the claim already loaded with the row (``queue.JOB_RELATED``), so no query."""
    phase = sub.phase
    sub.scored_annotation_sha256 = phase.test_annotation_sha256 or ""  # "": the phase has no annotation file
    sub.scored_package_version_id = phase.data_package_version_id


def forget(sub: Submission) -> None:
    """Clear the record, unsaved: the submission waits for a new evaluation, not scored against anything yet."""
    sub.scored_annotation_sha256 = None
    sub.scored_package_version_id = None


def kept_on_attempt(sub: Submission) -> dict[str, Any]:
    """The record as a :class:`SubmissionAttempt` keeps it when a re-run replaces the evaluation."""
    return {
        "scored_annotation_sha256": sub.scored_annotation_sha256,
        "scored_package_version_id": sub.scored_package_version_id,
    }


@dataclass(frozen=True)
class ScoredAgainst:
    """``recorded``: taken at the claim; False: the phase's current data (a submission claimed before)."""

    recorded: bool
    annotation_sha256: str | None
    version: DataPackageVersion | None


def of(sub: Submission | SubmissionAttempt, phase=None) -> ScoredAgainst:
    """What ``sub`` was scored against, or its phase's current data when nothing was recorded (pass
    ``phase`` for an attempt). Reads ``scored_package_version`` (and the phase's pin on the fallback):
    select them with the row to spare the queries."""
    if sub.scored_annotation_sha256 is not None:
        version = sub.scored_package_version if sub.scored_package_version_id else None
        return ScoredAgainst(True, sub.scored_annotation_sha256 or None, version)
    phase = phase if phase is not None else sub.phase
    version = phase.data_package_version if phase.data_package_version_id else None
    return ScoredAgainst(False, phase.test_annotation_sha256 or None, version)


def as_told(
    user, sub: Submission, evaluation: SubmissionAttempt | None = None, *, host: bool | None = None
) -> dict[str, Any] | None:
    """The field a reader of the submission is given (None before any worker was handed it): the package's
    name and version to those who may see its card (``data_packages.services.access.can_view``, the rule of
    the phase's own pin); the annotation file's SHA-256 to the challenge's hosts only. A participant never
    gets it: the digest of a small label file gives its labels away to anyone who tries the few candidates.
    ``evaluation``: an earlier evaluation of ``sub`` (told by the same rule). ``host``: whether ``user`` hosts
    its challenge, when the caller knows it already (a ``ResultReader`` does)."""
    held = evaluation or sub
    if held.scored_annotation_sha256 is None and held.started_at is None and held.completed_at is None:
        return None  # waiting for its (next) evaluation, or never run: scored against nothing
    scored = of(held, sub.phase)
    version = scored.version
    package = None
    if version is not None and can_view(user, version.package):
        package = {"name": version.package.slug, "version": version.number}
    if host is None:
        host = is_host(user, sub.phase.challenge)
    digest = scored.annotation_sha256 if host else None
    return {"recorded": scored.recorded, "annotation_sha256": digest, "data_package": package}
