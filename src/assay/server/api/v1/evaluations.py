"""A submission's evaluations (the current one and the earlier ones a host's re-run kept) and each one's files,
for its team and the challenge's hosts. Thin: who sees what is ``submissions.services.attempts``' (the current
evaluation's rule, :class:`~assay.server.submissions.services.result_access.ResultReader`)."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.submissions.models import Submission
from assay.server.submissions.services.attempts import FILE_KINDS, Evaluation, evaluation_file, evaluations

from .base import ApiView, not_found
from .submissions import ScoredAgainstOut


class EvaluationOut(serializers.Serializer):
    number = serializers.IntegerField(help_text="1: the first evaluation; the last is the current one.")
    current = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Submission.Status.choices)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    execution_time = serializers.FloatField(allow_null=True)
    output = serializers.JSONField(allow_null=True, help_text="Its result, only the splits you may see.")
    failure_reason = serializers.CharField(allow_blank=True)
    worker = serializers.CharField(
        allow_null=True, help_text="Hosts: the name of the worker token whose worker ran it (null: not run/unknown)."
    )
    rerun_by = serializers.CharField(allow_null=True, help_text="Hosts: who asked for the next evaluation.")
    rerun_at = serializers.DateTimeField(allow_null=True, help_text="When the next evaluation was asked for.")
    scored_against = ScoredAgainstOut(
        allow_null=True, help_text="What it was scored against (null: no worker was handed it)."
    )
    files = serializers.DictField(
        child=serializers.URLField(),
        help_text="The files you may download ({kind: url}); logs are left out when the phase hides them from you.",
    )


def _data(request: Request, sub: Submission, ev: Evaluation) -> dict:
    def url(kind: str) -> str:
        path = reverse("api-v1-evaluation-file", args=[sub.pk, ev.number, kind])
        return request.build_absolute_uri(path)

    return {
        "number": ev.number,
        "current": ev.current,
        "status": ev.status,
        "started_at": ev.started_at,
        "completed_at": ev.completed_at,
        "execution_time": ev.execution_time,
        "output": ev.output,
        "failure_reason": ev.failure_reason,
        "worker": ev.worker or None,
        "rerun_by": ev.rerun_by or None,
        "rerun_at": ev.rerun_at,
        "scored_against": ev.scored_against,
        "files": {kind: url(kind) for kind in ev.files},
    }


def _submission(submission_id: int) -> Submission:
    related = (
        "phase__challenge__host_team",
        "participant_team",
        "leased_by",
        "scored_package_version__package",
        "phase__data_package_version__package",
    )
    sub = Submission.objects.select_related(*related).filter(pk=submission_id).first()
    if sub is None:
        raise not_found("submission")
    return sub


class EvaluationsView(ApiView):
    @extend_schema(
        responses={
            200: inline_serializer("EvaluationsOut", {"results": EvaluationOut(many=True)}),
            404: OpenApiTypes.OBJECT,
        },
        summary="Every evaluation of a submission, the first first (its team and the hosts)",
    )
    def get(self, request: Request, submission_id: int) -> Response:
        sub = _submission(submission_id)
        rows = evaluations(request.user, sub)  # 404 for anyone but its team and the hosts
        return Response({"results": EvaluationOut([_data(request, sub, ev) for ev in rows], many=True).data})


class EvaluationFileView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(FILE_KINDS))],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="the file"),
            302: OpenApiResponse(description="with an object store (hosts): to a presigned URL of the file"),
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
            410: OpenApiTypes.OBJECT,
        },
        summary="One evaluation's stdout, stderr, result or metadata file, as the current evaluation's are served",
    )
    def get(self, request: Request, submission_id: int, number: int, kind: str):
        found = evaluation_file(request.user, _submission(submission_id), number, kind)
        if found.url is not None:
            return HttpResponseRedirect(found.url)
        response = HttpResponse(found.body, content_type=found.content_type)
        response["Content-Disposition"] = f'inline; filename="{found.filename}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
