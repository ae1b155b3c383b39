"""Submitting a registered model version to a phase: the normal ``submit()``, with the stored file.

Every rule of a submission holds (dates, participation, approval, bans, the phase's file kinds and image
checks, its limits, the queue): :func:`submit_model` calls :func:`submissions.services.submit.submit` with
the version's stored file, which the submission then names (``stored=``) — nothing is uploaded or copied.
Only the model's team may submit it, and only where that team takes part.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from assay.server.challenges.models import ChallengePhase
from assay.server.submissions.models import Submission
from assay.server.submissions.services import images
from assay.server.submissions.services.submit import SubmissionFields, gate, submit

from ..models import Model, ModelSubmission, ModelVersion
from .access import ModelRefusal, is_member


def accepts(phase: ChallengePhase, kind: str) -> bool:
    """Whether a phase takes a model of this kind: images in docker-based challenges, code bundles in
    static-dataset ones (the submissions' own rule, ``images.takes_code_bundles``)."""
    challenge = phase.challenge
    if not challenge.is_docker_based:
        return False
    return kind == Model.Kind.IMAGE or images.takes_code_bundles(challenge)


def phases_for(model: Model) -> list[ChallengePhase]:
    """The public phases of challenges the model's team takes part in that accept its kind (whether each
    is open now, and the team's limits, ``submit()`` says when asked)."""
    phases: QuerySet[ChallengePhase] = (
        ChallengePhase.objects.filter(
            challenge__participations__team=model.team,
            challenge__is_docker_based=True,
            is_public=True,
        )
        .select_related("challenge")
        .order_by("challenge__title", "id")
    )
    return [phase for phase in phases if accepts(phase, model.kind)]


def submit_model(user, version: ModelVersion, phase: ChallengePhase, fields: SubmissionFields) -> Submission:
    """A submission of ``version`` to ``phase`` by ``user`` (a member of the model's team), or a refusal."""
    model = version.model
    if not is_member(user, model):
        raise ModelRefusal("forbidden", "only the model's team may submit it", 403)
    if not accepts(phase, model.kind):
        raise ModelRefusal(
            "kind_not_accepted", f"phase {phase.name!r} does not take a {model.get_kind_display().lower()}", 400
        )
    participation = gate(user, phase)
    if participation.team_id != model.team_id:
        raise ModelRefusal(
            "other_team",
            f"the model is team {model.team.name!r}'s; you take part in this challenge with another team",
            403,
        )
    if not fields.method_name:
        fields.method_name = f"{model.name} v{version.number}" + (f" ({version.label})" if version.label else "")
    stored = (version.file.name, version.file_sha256, version.file_size)
    with default_storage.open(version.file.name, "rb") as fh:
        sub = submit(user, phase, fh, version.file_name, fields, participation=participation, stored=stored)
    ModelSubmission.objects.create(version=version, submission=sub)
    return sub
