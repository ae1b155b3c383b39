"""A submission's reproducibility manifest (``assay.evidence.manifest``), signed with the operator's key.

Everything in it is read from what the platform stored when the submission was made and evaluated: the
SHA-256s kept beside each file, the challenge's evaluation environment (its pinned packages), the phase's
audit settings, the data package version its test data came from when the phase pins one, the stored
summary and the trail's head. The annotations and package version are those its evaluation was handed
(recorded at the claim: ``submissions.services.scored_against``), whatever the phase pins since;
``scored_against.recorded`` is False for a submission evaluated before that was kept. With
``ASSAY_AUDIT_SIGNING_KEY`` set (the path of an Ed25519 PEM key, ``assay audit keygen``) it is signed;
otherwise ``"signature": null``.

A manifest depends on what is stored, never on the moment it is asked for: its ``created_at`` is the time
of the trail record it names as head, so two downloads give the same bytes until the trail grows. A release
keeps the manifest made at that moment (``Release.manifest``), and every download of a released (or
retracted) audit hands out that one: what was released stays what readers verify, whatever changes later
(a new Assay version, a re-uploaded bundle, another signing key).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

import assay
from assay.bundle import environments
from assay.evidence import manifest as manifests
from assay.evidence import signing
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.package_pins import pinned_files, version_files
from assay.server.submissions.models import Submission, SubmissionCases
from assay.server.submissions.services import scored_against

from ..models import AuditSummary, Release
from . import trail


@functools.cache
def _key(path: str) -> Ed25519PrivateKey:
    try:
        return signing.load_private_key(Path(path))
    except OSError as exc:
        raise ImproperlyConfigured(f"ASSAY_AUDIT_SIGNING_KEY: cannot read {path}: {exc.strerror or exc}") from None
    except signing.SigningKeyError as exc:
        raise ImproperlyConfigured(f"ASSAY_AUDIT_SIGNING_KEY: {path}: {exc}") from None


def signing_key() -> Ed25519PrivateKey | None:
    """The operator's key, read once per process; None when none is configured."""
    path = getattr(settings, "AUDIT_SIGNING_KEY", "")
    return _key(path) if path else None


def check_signing_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """System check (``manage.py check``, ``migrate``, ``serve``): a configured key that cannot be used is
    an error at start-up, not a 500 on the first manifest download."""
    try:
        signing_key()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="assay audit keygen --out FILE makes a key", id="audits.E001")]
    return []


def public_key_pem() -> str | None:
    """The public half of the operator's key, for a page that tells verifiers what to pass --public-key."""
    key = signing_key()
    return signing.public_pem(key).decode() if key is not None else None


def _environment(submission: Submission) -> dict[str, Any]:
    phase, challenge = submission.phase, submission.phase.challenge
    if phase.environment_image or challenge.is_docker_based:
        return {
            "kind": "image",
            "image": phase.environment_image or None,
            "image_sha256": phase.environment_image_sha256 or None,
        }
    try:
        env = environments.get(challenge.evaluation_environment)
    except (KeyError, ValueError):
        return {"kind": "python", "name": challenge.evaluation_environment, "packages": None}
    return {"kind": "python", "name": env.name, "packages": list(env.requirements)}


def _summary(submission: Submission) -> dict[str, Any] | None:
    return AuditSummary.objects.filter(submission_id=submission.pk).values_list("document", flat=True).first()


def _data_package(phase: ChallengePhase, scored: scored_against.ScoredAgainst) -> dict[str, Any] | None:
    """The package version the evaluation was scored against (recorded at its claim; else the phase's pin) and
    each file taken from it (what it is used as, its path in the package, role and SHA-256): the annotations
    by the SHA-256 recorded, the test inputs and case metadata (the phase's now) where that version holds the
    same bytes. None when the test data was its bundle's own."""
    version = scored.version
    if version is None:
        return None
    if scored.recorded:
        digests = {
            "annotations": scored.annotation_sha256,
            "test_inputs": phase.test_inputs_sha256,
            "case_metadata": phase.case_metadata_sha256,
        }
        taken = version_files(version, digests)
    else:
        taken = pinned_files(phase)
    files = [
        {"use": use, "path": row.path, "role": row.role, "sha256": row.sha256} for use, row in sorted(taken.items())
    ]
    return {"name": version.package.slug, "version": version.number, "files": files}


def _iso(at: dt.datetime | None) -> str | None:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds") if at else None


def manifest_of(submission: Submission) -> dict[str, Any]:
    """What every face hands out: the manifest kept at release, or (not released, or released before
    manifests were kept) the one :func:`build_manifest` makes from what is stored now."""
    kept = Release.objects.filter(submission_id=submission.pk).values_list("manifest", flat=True).first()
    return kept if kept is not None else build_manifest(submission)


def build_manifest(submission: Submission) -> dict[str, Any]:
    """The manifest of ``submission`` as it stands now, signed when the operator configured a key; made
    as of the trail's head (``created_at`` is that record's time), so the same state gives the same bytes."""
    submission = Submission.objects.select_related(
        "phase__challenge",
        "phase__data_package_version__package",
        "scored_package_version__package",
        "participant_team",
    ).get(pk=submission.pk)
    phase, challenge = submission.phase, submission.phase.challenge
    scored = scored_against.of(submission)  # what its evaluation was handed, not what the phase names now
    cases = SubmissionCases.objects.filter(submission_id=submission.pk).values("sha256", "count").first()
    head_hash, length, head_at = trail.head_at(submission)
    as_of = head_at or submission.completed_at or submission.submitted_at  # an empty trail: the result's time
    document = manifests.document(
        submission={
            "id": submission.pk,
            "number": submission.submission_number,
            "team": submission.participant_team.name,
            "challenge": {"id": challenge.pk, "slug": challenge.slug, "title": challenge.title},
            "phase": {"id": phase.pk, "codename": phase.codename, "name": phase.name},
            "status": submission.status,
            "image_digest": submission.image_digest or None,
            "submitted_at": _iso(submission.submitted_at),
            "completed_at": _iso(submission.completed_at),
            "cases": cases["count"] if cases else None,
        },
        files={
            "submission": submission.input_file_sha256 or None,
            "evaluation_script": challenge.evaluation_script_sha256 or None,
            "annotations": scored.annotation_sha256,
            "case_metadata": phase.case_metadata_sha256 or None,
            "cases": cases["sha256"] if cases else None,
        },
        environment=_environment(submission),
        audit_settings=phase.audit,
        summary=_summary(submission),
        trail_head=(head_hash, length),
        assay_version=assay.__version__,
        created_at=_iso(as_of) or "",
        data_package=_data_package(phase, scored),
        recorded=scored.recorded,
    )
    key = signing_key()
    return signing.signed(document, key) if key is not None else document
