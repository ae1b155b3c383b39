"""Native submission endpoints beyond create/detail: my submissions, logs, result, lifecycle actions,
visibility, host marks, the host's list and CSV export. Thin: the rules are the services'."""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.evaluation.contract import describe_result
from assay.server.api.throttling import ScopedRateThrottle
from assay.server.challenges.services.roles import participation_of
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle
from assay.server.submissions.services.access import can_view, can_view_logs
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.result_access import ResultReader

from . import submission_views
from .files import result_url
from .native_challenges import visible_phase
from .native_common import NativeView, Pages, hosted_challenge, not_found
from .submission_views import SubmissionOut


def viewable_submission(user, submission_id: int) -> Submission:
    sub = (
        Submission.objects.select_related("phase__challenge__host_team", "participant_team", "created_by")
        .filter(pk=submission_id)
        .first()
    )
    if sub is None or not can_view(user, sub):
        raise not_found("submission")
    return sub


def submission_data(request: Request, sub: Submission, reader: ResultReader | None = None) -> dict:
    """The submission as ``request.user`` may see it (hidden splits cut, the result URL theirs)."""
    reader = reader or ResultReader(request.user)
    data = SubmissionOut(sub, context={"reader": reader}).data
    data["result_url"] = result_url(request, reader, sub)
    return data


class PhaseSubmissionsView(submission_views.PhaseSubmissionsView):
    """``POST`` submits a file (the lead's view); ``GET`` lists your team's submissions to the phase."""

    throttle_scope = "submit"
    # what self.paginate answers: drf-spectacular documents the list response as this page
    pagination_class = Pages

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses={200: SubmissionOut(many=True)}, summary="Your team's submissions to a phase")
    def get(self, request: Request, phase_id: int) -> Response:
        phase = visible_phase(request.user, phase_id)
        participation = participation_of(request.user, phase.challenge)
        qs = Submission.objects.none()
        if participation is not None:
            qs = Submission.objects.filter(phase=phase, participant_team=participation.team, ignore_submission=False)
        qs = qs.select_related("phase__challenge", "participant_team").order_by("-submitted_at", "-id")
        reader = ResultReader(request.user)
        return NativeView.paginate(self, request, qs, lambda s: submission_data(request, s, reader))


class VisibilityIn(serializers.Serializer):
    is_public = serializers.BooleanField()


class MarksIn(serializers.Serializer):
    is_baseline = serializers.BooleanField(required=False)
    is_flagged = serializers.BooleanField(required=False)
    is_verified_by_host = serializers.BooleanField(required=False)


class SubmissionView(NativeView):
    """Change (visibility) or hide one submission; reading it is :class:`submission_views.SubmissionDetailView`."""

    @extend_schema(request=VisibilityIn, responses={200: SubmissionOut}, summary="Show on or hide from the leaderboard")
    def patch(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = VisibilityIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            submission_data(request, lifecycle.set_public(request.user, sub, data.validated_data["is_public"]))
        )

    @extend_schema(responses={204: None}, summary="Hide (soft-delete) a submission")
    def delete(self, request: Request, submission_id: int) -> Response:
        lifecycle.hide(request.user, viewable_submission(request.user, submission_id))
        return Response(status=204)


class SubmissionActionView(NativeView):
    action_name = ""

    @extend_schema(request=None, responses={200: SubmissionOut})
    def post(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        done = getattr(lifecycle, self.action_name)(request.user, sub)
        return Response(submission_data(request, done))


class CancelView(SubmissionActionView):
    action_name = "cancel"


class RerunView(SubmissionActionView):
    action_name = "rerun"


class ResumeView(SubmissionActionView):
    action_name = "resume"


class MarksView(NativeView):
    @extend_schema(request=MarksIn, responses={200: SubmissionOut}, summary="Host marks: baseline, flagged, verified")
    def patch(self, request: Request, submission_id: int) -> Response:
        sub = viewable_submission(request.user, submission_id)
        data = MarksIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        done = lifecycle.mark(
            request.user,
            sub,
            baseline=v.get("is_baseline"),
            flagged=v.get("is_flagged"),
            verified=v.get("is_verified_by_host"),
        )
        return Response(submission_data(request, done))


class SubmissionFileView(NativeView):
    """stdout, stderr (``disable_logs`` hides them from participants) and the result file, as text."""

    field = ""

    @extend_schema(
        responses={(200, "text/plain"): OpenApiTypes.STR, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request, submission_id: int):
        sub = viewable_submission(request.user, submission_id)
        if self.field == "submission_result_file":
            body = ResultReader(request.user).result_document(sub)  # cut to what this reader may see
            return HttpResponse(body, content_type="text/plain; charset=utf-8")
        if not can_view_logs(request.user, sub):
            raise SubmissionError("forbidden", "the host has disabled logs for this phase", 403)
        stored = getattr(sub, self.field)
        if not stored:
            raise SubmissionError("not_ready", f"this submission has no log yet (it is {sub.status})", 404)
        with stored.open("rb") as fh:
            body = fh.read()
        return HttpResponse(body, content_type="text/plain; charset=utf-8")


class StdoutView(SubmissionFileView):
    field = "stdout_file"


class StderrView(SubmissionFileView):
    field = "stderr_file"


class ResultView(SubmissionFileView):
    field = "submission_result_file"


EXPORT_COLUMNS = [
    "id", "phase", "team", "members", "created_by", "status", "submission_number", "submitted_at", "started_at",
    "completed_at", "execution_time", "is_public", "is_baseline", "is_flagged", "is_verified_by_host",
    "method_name", "method_description", "project_url", "publication_url", "input_file_name", "input_file_sha256",
    "failure_reason", "result",
]  # fmt: skip


def _row(sub: Submission, reader: ResultReader) -> dict:
    return {
        "id": sub.pk,
        "phase": sub.phase.codename,
        "team": sub.participant_team.name,
        "members": ", ".join(sorted(sub.participant_team.members.values_list("username", flat=True))),
        "created_by": sub.created_by.username,
        "status": sub.status,
        "submission_number": sub.submission_number,
        "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else "",
        "started_at": sub.started_at.isoformat() if sub.started_at else "",
        "completed_at": sub.completed_at.isoformat() if sub.completed_at else "",
        "execution_time": sub.execution_time if sub.execution_time is not None else "",
        "is_public": sub.is_public,
        "is_baseline": sub.is_baseline,
        "is_flagged": sub.is_flagged,
        "is_verified_by_host": sub.is_verified_by_host,
        "method_name": sub.method_name,
        "method_description": sub.method_description,
        "project_url": sub.project_url,
        "publication_url": sub.publication_url,
        "input_file_name": sub.input_file_name,
        "input_file_sha256": sub.input_file_sha256,
        "failure_reason": sub.failure_reason,
        "result": reader.result(sub) if isinstance(sub.output, dict) else "",
    }


def _csv_safe(value) -> str:
    """Cells starting with = + - @ are formulas to a spreadsheet: prefix them (CSV injection)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class ChallengeSubmissionsView(NativeView):
    @extend_schema(
        parameters=[
            OpenApiParameter("phase", int),
            OpenApiParameter("status", str, enum=[s.value for s in Submission.Status]),
            OpenApiParameter("export", str, enum=["csv"], description="csv: download a CSV file"),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="Every submission of a challenge (hosts)",
    )
    def get(self, request: Request, challenge_id: int):
        challenge = hosted_challenge(request.user, challenge_id)
        qs = Submission.objects.filter(phase__challenge=challenge).select_related(
            "phase", "participant_team", "created_by"
        )
        phase = request.query_params.get("phase")
        if phase:
            if not phase.isdigit():
                raise SubmissionError("invalid", "phase is a phase id", 400)
            qs = qs.filter(phase_id=int(phase))
        status = request.query_params.get("status")
        if status:
            if status not in Submission.Status.values:
                raise SubmissionError("invalid", f"status is one of {Submission.Status.values}", 400)
            qs = qs.filter(status=status)
        qs = qs.order_by("submitted_at", "id")
        reader = ResultReader(request.user)  # hosts: every split; the one rule all the same
        if request.query_params.get("export") == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            for sub in qs.iterator(chunk_size=500):
                row = _row(sub, reader)
                row["result"] = describe_result(row["result"])  # readable, undefined metrics as "—"
                writer.writerow({k: _csv_safe(v) for k, v in row.items()})
            response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="challenge-{challenge.pk}-submissions.csv"'
            return response
        return self.paginate(request, qs, lambda s: _row(s, reader))
