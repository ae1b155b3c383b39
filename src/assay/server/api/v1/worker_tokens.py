"""Worker tokens of a remote-evaluation challenge, managed by its hosts; the workers seen lately on a challenge's
queue (:mod:`assay.server.submissions.services.workers_seen`), for its hosts."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.challenges.models import Challenge
from assay.server.challenges.services.roles import is_host
from assay.server.refusals import Refusal
from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import check_token_maker, create_worker_token, revoke_worker_token
from assay.server.submissions.services.workers_seen import workers_for

from .base import ApiView, Pages, hosted_challenge, not_found


@extend_schema_serializer(component_name="WorkerTokenOut")  # TokenOut is the personal API token's
class TokenOut(serializers.ModelSerializer):
    class Meta:
        model = WorkerToken
        fields = ["id", "name", "queue_name", "prefix", "created_at", "revoked_at", "last_used_at"]


@extend_schema_serializer(component_name="WorkerTokenIn")
class TokenIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ChallengeWorkerTokensView(ApiView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    def _challenge(self, request: Request, challenge_id: int) -> Challenge | None:
        challenge = get_object_or_404(Challenge.objects.select_related("host_team"), pk=challenge_id)
        return challenge if is_host(request.user, challenge) else None

    @extend_schema(responses={200: TokenOut(many=True)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = self._challenge(request, challenge_id)
        if challenge is None:
            raise Refusal("forbidden", "only the challenge's hosts see its worker tokens", 403)
        return self.paginate(request, challenge.worker_tokens.order_by("pk"), TokenOut)

    @extend_schema(request=TokenIn, responses={201: TokenOut})
    def post(self, request: Request, challenge_id: int) -> Response:
        challenge = get_object_or_404(Challenge, pk=challenge_id)
        check_token_maker(request.user, challenge)
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        row, token = create_worker_token(request.user, data.validated_data["name"], challenge)
        return Response({**TokenOut(row).data, "token": token}, status=201)


class WorkerTokenDetailView(ApiView):
    @extend_schema(request=None, responses={204: None}, summary="Revoke a worker token (its hosts)")
    def delete(self, request: Request, token_id: int) -> Response:
        row = WorkerToken.objects.select_related("challenge__host_team").filter(pk=token_id).first()
        if row is None:
            raise not_found("token")
        revoke_worker_token(request.user, row)
        return Response(status=204)


class SeenJobOut(serializers.Serializer):
    submission_id = serializers.IntegerField()
    phase_name = serializers.CharField()
    worker_id = serializers.CharField(help_text="The id the worker process claimed the job with.")
    attempt = serializers.IntegerField()


class SeenWorkerOut(serializers.Serializer):
    name = serializers.CharField(help_text="The worker token's name.")
    last_seen_at = serializers.DateTimeField(help_text="Its last claim, heartbeat or result (UTC, to the minute).")
    jobs = SeenJobOut(many=True, help_text="This challenge's submissions it is evaluating now.")
    other_jobs = serializers.IntegerField(help_text="Jobs of other challenges it holds (platform queue).")


class QueueWorkersOut(serializers.Serializer):
    queue_name = serializers.CharField()
    platform = serializers.BooleanField(help_text="The platform's shared queue (else the challenge's own).")
    online = serializers.BooleanField(help_text="Whether any worker was seen within `minutes`.")
    minutes = serializers.IntegerField(help_text="How far back a worker counts as seen.")
    waiting = serializers.IntegerField(help_text="This challenge's submissions waiting for a worker.")
    workers = SeenWorkerOut(many=True)


class ChallengeWorkersView(ApiView):
    @extend_schema(responses={200: QueueWorkersOut}, summary="Workers seen lately on the challenge's queue (hosts)")
    def get(self, request: Request, challenge_id: int) -> Response:
        return Response(QueueWorkersOut(workers_for(hosted_challenge(request.user, challenge_id))).data)
