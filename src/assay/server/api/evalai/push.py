"""``evalai push IMAGE:TAG -p PHASE -u REGISTRY`` without AWS (reference/evalai.md §5.3, docs/containers.md).

EvalAI answers ``GET /api/challenges/phases/<p>/participant_team/aws/credentials/`` with STS credentials
for an ECR repository named ``<challenge>-participant-team-<team>``. Assay names the same repository in
the operator's own registry (the first of ``ASSAY_CONTAINER_REGISTRIES``) and hands out no credentials:
the CLI only reads ``federated_user`` when ``EVALAI_CLI_ENVIRONMENT=PRODUCTION``; otherwise it pushes to
``<-u registry>/<repository>:<uuid4>`` and submits that reference, which the submit checks (listed
registry, the team's own repository) and pins to its digest (``submissions/services/images.py``).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.challenges.services.roles import participation_of
from assay.server.submissions.services import images

from .base import EvalAIView, fail
from .views import _phase


class PushRepositoryView(EvalAIView):
    """Where a participant's team pushes its images for this phase's challenge."""

    def get(self, request: Request, phase_id: int) -> Response:
        phase = _phase(request.user, phase_id)
        challenge = phase.challenge
        if not challenge.is_docker_based:
            raise fail("Sorry, this is not a docker based challenge.", 400, "not_docker_based")
        if not settings.CONTAINER_REGISTRIES:
            raise fail(
                "evalai push needs a container registry and this server has none: the operator must set"
                " ASSAY_CONTAINER_REGISTRIES (docs/containers.md). Meanwhile upload the image with"
                " `assay push IMAGE:TAG --phase PHASE`",
                400,
                "no_registry",
            )
        participation = participation_of(request.user, challenge)
        if participation is None:
            raise fail("You haven't participated in the challenge", 403, "not_participating")
        repository = images.team_repository(challenge, participation.team_id)
        uri = f"{settings.CONTAINER_REGISTRIES[0]}/{repository}"
        return Response({"success": {"federated_user": {}, "docker_repository_uri": uri}})
