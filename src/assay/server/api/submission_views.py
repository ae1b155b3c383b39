"""Participants' submission endpoints of the native API (thin: the rules live in the services)."""

from __future__ import annotations

import json

from django.contrib.auth.models import AnonymousUser
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import parsers, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assay.server.challenges.models import ChallengePhase
from assay.server.refusals import Refusal
from assay.server.submissions.models import Submission
from assay.server.submissions.services import queue
from assay.server.submissions.services.access import can_view, can_view_logs
from assay.server.submissions.services.result_access import ResultReader
from assay.server.submissions.services.submit import SubmissionFields, submit


class SubmissionOut(serializers.ModelSerializer):
    """A submission for one reader: pass ``context={"reader": ResultReader(user)}`` (without one, the
    output is cut as for a stranger: hidden splits never leak through a forgotten context)."""

    phase_codename = serializers.CharField(source="phase.codename")
    participant_team_name = serializers.CharField(source="participant_team.name")
    execution_time = serializers.FloatField(read_only=True, allow_null=True)  # null until it ran
    output = serializers.SerializerMethodField(help_text="The evaluation's result, only the splits you may see.")

    def get_output(self, sub: Submission) -> dict | None:
        reader = self.context.get("reader") or ResultReader(AnonymousUser())
        return reader.output(sub)

    waiting_for = serializers.SerializerMethodField(
        help_text="Why a waiting submission is not evaluated yet (its challenge awaits an administrator's"
        " approval), else null."
    )

    def get_waiting_for(self, sub: Submission) -> str | None:
        return queue.waiting_for(sub)

    class Meta:
        model = Submission
        fields = [
            "id", "phase", "phase_codename", "participant_team", "participant_team_name", "submission_number",
            "status", "waiting_for", "failure_reason", "is_public", "is_baseline", "is_flagged", "is_verified_by_host",
            "method_name", "method_description", "project_url", "publication_url", "submission_metadata",
            "input_file_name", "input_file_sha256", "input_file_size", "image_digest", "output", "attempt",
            "submitted_at", "started_at", "completed_at", "execution_time",
        ]  # fmt: skip


class SubmitIn(serializers.Serializer):
    input_file = serializers.FileField()
    is_public = serializers.BooleanField(required=False, allow_null=True, default=None)
    method_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    method_description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    project_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=1000)
    publication_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=1000)
    submission_metadata = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Meta attributes as JSON ({name: value} or a list).",
    )

    def validate_submission_metadata(self, value: str):
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise serializers.ValidationError(f"not valid JSON: {exc.msg}") from None


class PhaseSubmissionsView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(request={"multipart/form-data": SubmitIn}, responses={201: SubmissionOut})
    def post(self, request: Request, phase_id: int) -> Response:
        phase = get_object_or_404(ChallengePhase.objects.select_related("challenge__host_team"), pk=phase_id)
        data = SubmitIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = v["input_file"]
        fields = SubmissionFields(
            is_public=v["is_public"],
            method_name=v["method_name"],
            method_description=v["method_description"],
            project_url=v["project_url"],
            publication_url=v["publication_url"],
            meta=v["submission_metadata"],
        )
        sub = submit(request.user, phase, upload, upload.name, fields)
        return Response(SubmissionOut(sub, context={"reader": ResultReader(request.user)}).data, status=201)


class SubmissionDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: SubmissionOut})
    def get(self, request: Request, submission_id: int) -> Response:
        sub = (
            Submission.objects.select_related("phase__challenge__host_team", "participant_team")
            .filter(pk=submission_id)
            .first()
        )
        if sub is None or not can_view(request.user, sub):
            raise Refusal("not_found", "no such submission", 404)
        data = SubmissionOut(sub, context={"reader": ResultReader(request.user)}).data
        if can_view_logs(request.user, sub):
            data["stdout"] = _read(sub.stdout_file)
            data["stderr"] = _read(sub.stderr_file)
        return Response(data)


def _read(field) -> str | None:
    if not field:
        return None
    with field.open("rb") as fh:
        return fh.read().decode("utf-8", "replace")
