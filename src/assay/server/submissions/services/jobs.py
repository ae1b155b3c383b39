"""What a worker is told about a leased job, and which stored files a worker token may fetch."""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.db.models.fields.files import FieldFile

from assay.server.challenges.models import Challenge, ChallengePhase
from assay.server.challenges.services.phase_rules import split_rules
from assay.server.prepared import Prepared

from ..models import Submission, WorkerToken
from . import images
from .queue import held_by


def _file(field: FieldFile, digest: str, size: int | None = None, name: str | None = None) -> dict | None:
    if not field or not digest:
        return None
    return {"sha256": digest, "size": size if size is not None else field.size, "name": name or field.name}


def submission_metadata(sub: Submission) -> dict[str, Any]:
    """EvalAI passes its serialized submission as ``kwargs['submission_metadata']``; same keys here."""
    return {
        "id": sub.pk,
        "participant_team": sub.participant_team_id,
        "participant_team_name": sub.participant_team.name,
        "challenge_phase": sub.phase_id,
        "created_by": sub.created_by.username,
        "status": sub.status,
        "submission_number": sub.submission_number,
        "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else None,
        "started_at": sub.started_at.isoformat() if sub.started_at else None,
        "method_name": sub.method_name,
        "method_description": sub.method_description,
        "project_url": sub.project_url,
        "publication_url": sub.publication_url,
        "is_public": sub.is_public,
        "is_baseline": sub.is_baseline,
        "submission_metadata": sub.submission_metadata,
        "input_file_name": sub.input_file_name,
    }


def job_payload(sub: Submission) -> dict[str, Any]:
    phase: ChallengePhase = sub.phase
    challenge: Challenge = phase.challenge
    splits: dict[str, list[str]] = {}
    for rule in split_rules(phase.pk):
        labels = splits.setdefault(rule.codename, [])
        labels.extend(label for label in rule.labels if label not in labels)
    return {
        "submission_id": sub.pk,
        "attempt": sub.attempt,
        "lease_seconds": settings.WORKER_LEASE_SECONDS,
        "lease_expires_at": sub.lease_expires_at.isoformat() if sub.lease_expires_at else None,
        "challenge": {
            "id": challenge.pk,
            "title": challenge.title,
            "remote_evaluation": challenge.remote_evaluation,
        },
        "phase": {
            "id": phase.pk,
            "codename": phase.codename,
            "name": phase.name,
            "is_partial_submission_evaluation_enabled": phase.is_partial_submission_evaluation_enabled,
        },
        "splits": splits,
        "submission_file": _file(sub.input_file, sub.input_file_sha256, sub.input_file_size, sub.input_file_name),
        "evaluation_script": _file(challenge.evaluation_script, challenge.evaluation_script_sha256),
        "annotation": _file(phase.test_annotation, phase.test_annotation_sha256, phase.test_annotation_size),
        "submission_metadata": submission_metadata(sub),
        "limits": limits_for(challenge),
        "environment": challenge.evaluation_environment,
        "chunking": phase.chunked_evaluation,
        "container": container_block(sub),
    }


INLINE_BYTES = 64 * 1024  # a submission file this small travels inside the claim's answer


def with_inline_file(payload: dict[str, Any], sub: Submission) -> dict[str, Any]:
    """The job as a remote worker is told it over HTTP: a small submission file rides along (base64 in
    ``submission_file.content``), sparing the download request most submissions would need next (the
    in-process transport links files instead). The worker checks its hash as it checks a download; a
    worker that ignores it downloads as before."""
    info = payload.get("submission_file")
    if info is None or payload.get("container") or not 0 <= (sub.input_file_size or 0) <= INLINE_BYTES:
        return payload  # a container job's worker fetches its image or code bundle by the container block
    try:
        with sub.input_file.open("rb") as stored:
            data = stored.read(INLINE_BYTES + 1)
    except OSError:
        return payload  # the download answers what went wrong
    if len(data) <= INLINE_BYTES:
        info["content"] = base64.b64encode(data).decode("ascii")
    return payload


def container_block(sub: Submission) -> dict[str, Any] | None:
    """What a worker needs to run a docker-based challenge's submission (docs/containers.md)."""
    phase: ChallengePhase = sub.phase
    challenge: Challenge = phase.challenge
    kind = images.container_kind(challenge)
    if kind is None:
        return None
    tarball = _file(sub.input_file, sub.input_file_sha256, sub.input_file_size, sub.input_file_name)
    image: dict[str, Any] = {"file": tarball}
    if sub.input_file_name.lower().endswith(images.REFERENCE_SUFFIX) and sub.input_file:
        image = {"reference": images.job_reference(sub)}  # pinned to the digest resolved at submit
    elif images.is_code_bundle(sub):
        image = {"code": tarball}  # a zip run in the worker's process sandbox, no Docker needed
    environment: dict[str, Any] | None = None
    if kind == "environment":
        env_file = _file(phase.environment_image_file, phase.environment_image_sha256, phase.environment_image_size)
        if env_file is not None:
            environment = {"file": env_file}
        elif phase.environment_image:
            environment = {"reference": phase.environment_image}
    return {
        "kind": kind,
        "image": image,
        "image_digest": sub.image_digest,
        "max_image_bytes": challenge.max_docker_image_size,
        "test_inputs": _file(phase.test_inputs, phase.test_inputs_sha256, phase.test_inputs_size)
        if kind == "static_dataset"
        else None,
        "environment": environment,
    }


def limits_for(challenge: Challenge) -> dict[str, int]:
    """The bundle's ``evaluation_limits`` over the server's defaults; wall clock = submission_time_limit."""
    own = challenge.evaluation_limits or {}
    wall = challenge.submission_time_limit
    return {
        "wall_seconds": wall,
        "cpu_seconds": own.get("cpu_seconds") or wall,
        "memory_bytes": (own.get("memory_mb") or settings.EVALUATION_MEMORY_BYTES // 2**20) * 2**20,
        "max_processes": own.get("max_processes") or settings.EVALUATION_MAX_PROCESSES,
        "max_output_bytes": (own.get("max_output_kb") or settings.EVALUATION_MAX_OUTPUT_BYTES // 1024) * 1024,
    }


# A held job's submission file by its hash, compiled once per database from :func:`.queue.held_by` itself (the
# ORM's building of it cost more than running it, on every download), run with the token and the hash; the
# stand-ins are values no queue, token or hash takes.
_HELD_INPUT: dict[str, Prepared] = {}
_QUEUE_MARK, _TOKEN_MARK, _SHA_MARK = "\x00queue", -101, "\x00sha"


def _held_input_query() -> Prepared:
    if connection.alias not in _HELD_INPUT:
        marks = WorkerToken(pk=_TOKEN_MARK, queue_name=_QUEUE_MARK)
        qs = held_by(marks).filter(input_file_sha256=_SHA_MARK).only("id", "input_file")[:1]
        _HELD_INPUT[connection.alias] = Prepared(qs, queue=_QUEUE_MARK, token=_TOKEN_MARK, sha=_SHA_MARK)
    return _HELD_INPUT[connection.alias]


def file_for_worker(token: WorkerToken, sha256: str) -> FieldFile | None:
    """A stored file a job this token holds needs (:func:`.queue.held_by`) — and nothing else."""
    if len(sha256) != 64:
        return None
    if token.pk is not None:  # a submission's own file, what nearly every download is: one compiled query
        held = _held_input_query().instances(queue=token.queue_name, token=token.pk, sha=sha256)
        if held:
            return held[0].input_file
    running = held_by(token)
    phases = ChallengePhase.objects.filter(submissions__in=running)
    phase = phases.filter(test_annotation_sha256=sha256).distinct().first()
    if phase is not None:
        return phase.test_annotation
    phase = phases.filter(test_inputs_sha256=sha256, challenge__is_docker_based=True).distinct().first()
    if phase is not None:
        return phase.test_inputs
    phase = phases.filter(environment_image_sha256=sha256, challenge__is_docker_based=True).distinct().first()
    if phase is not None:
        return phase.environment_image_file
    challenge = (
        Challenge.objects.filter(Q(evaluation_script_sha256=sha256), phases__submissions__in=running).distinct().first()
    )
    if challenge is not None:
        return challenge.evaluation_script
    return None
