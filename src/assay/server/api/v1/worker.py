"""The worker protocol: claim (long-poll) → heartbeat → complete | release, leave, and files by hash."""

from __future__ import annotations

from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.refusals import Refusal
from assay.server.storage import presigned_get
from assay.server.submissions.services import jobs, queue

from ..auth import IsWorker, WorkerTokenAuthentication
from .base import ApiView


class WorkerView(ApiView):
    """The worker protocol's base: worker tokens only, never throttled (a worker long-polls by design)."""

    authentication_classes = [WorkerTokenAuthentication]
    permission_classes = [IsWorker]
    throttle_classes: list = []


class ClaimIn(serializers.Serializer):
    worker_id = serializers.CharField(max_length=100)
    wait = serializers.FloatField(min_value=0, default=0, help_text="Seconds to wait for a job (long-poll).")
    containers = serializers.BooleanField(
        default=False, help_text="This worker can run container images (docker-based challenges' jobs)."
    )
    code_bundles = serializers.BooleanField(
        default=False, help_text="This worker can run code bundles in its bubblewrap sandbox (static-dataset phases)."
    )


class LeaveIn(serializers.Serializer):
    worker_id = serializers.CharField(max_length=100)


class AttemptIn(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)


class CompleteIn(AttemptIn):
    output = serializers.JSONField(required=False, allow_null=True, help_text="What evaluate() returned.")
    # the lengths are queue.Completion's rules (both transports); here for the schema
    error = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=queue.MAX_ERROR_CHARS)
    stdout = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    stderr = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    sandbox = serializers.CharField(required=False, allow_blank=True, default="", max_length=queue.MAX_SANDBOX_CHARS)
    cases = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The per-case rows evaluate() returned ('cases'), as gzip'd JSON lines in base64; kept privately.",
    )
    error_kind = serializers.ChoiceField(
        choices=queue.ERROR_KINDS,
        required=False,
        allow_null=True,
        help_text="With an error: how the evaluation failed (the failures metric's reason).",
    )


class ClaimView(WorkerView):
    @extend_schema(
        request=ClaimIn,
        responses={
            200: OpenApiResponse(description="{'job': {...}}"),
            204: OpenApiResponse(description="No job"),
        },
    )
    def post(self, request: Request) -> Response:
        data = ClaimIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sub = queue.claim_waiting(
            request.auth,
            v["worker_id"],
            wait=v["wait"],
            containers=v["containers"],
            code_bundles=v["code_bundles"],
        )
        if sub is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response({"job": jobs.with_inline_file(jobs.job_payload(sub), sub)})


class LeaveView(WorkerView):
    @extend_schema(
        request=LeaveIn,
        responses={200: OpenApiResponse(description="{'left': true}: the worker's waiting claim ends without a job")},
    )
    def post(self, request: Request) -> Response:
        data = LeaveIn(data=request.data)
        data.is_valid(raise_exception=True)
        queue.leave(request.auth, data.validated_data["worker_id"])
        return Response({"left": True})


class HeartbeatView(WorkerView):
    @extend_schema(request=AttemptIn, responses={200: OpenApiResponse(description="{'lease_expires_at': ...}")})
    def post(self, request: Request, submission_id: int) -> Response:
        data = AttemptIn(data=request.data)
        data.is_valid(raise_exception=True)
        expires = queue.heartbeat(request.auth, submission_id, data.validated_data["attempt"])
        return Response({"lease_expires_at": expires.isoformat()})


class ReleaseView(WorkerView):
    @extend_schema(request=AttemptIn, responses={200: OpenApiResponse(description="released")})
    def post(self, request: Request, submission_id: int) -> Response:
        data = AttemptIn(data=request.data)
        data.is_valid(raise_exception=True)
        queue.release(request.auth, submission_id, data.validated_data["attempt"])
        return Response({"released": True})


class CompleteView(WorkerView):
    @extend_schema(request=CompleteIn, responses={200: OpenApiResponse(description="{'status', 'failure_reason'}")})
    def post(self, request: Request, submission_id: int) -> Response:
        data = CompleteIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sub = queue.complete(
            request.auth,
            submission_id,
            queue.Completion(
                attempt=v["attempt"],
                output=v.get("output"),
                error=v.get("error") or None,
                stdout=v.get("stdout", ""),
                stderr=v.get("stderr", ""),
                sandbox=v.get("sandbox", ""),
                cases=v.get("cases") or None,
                error_kind=v.get("error_kind"),
            ),
        )
        return Response({"status": sub.status, "failure_reason": sub.failure_reason})


class FileView(WorkerView):
    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="the file"),
            302: OpenApiResponse(description="with an object store: to a presigned URL of the file (no credentials)"),
        }
    )
    def get(self, request: Request, sha256: str):
        field = jobs.file_for_worker(request.auth, sha256.lower())
        if field is None:
            raise Refusal("not_found", "no file with this hash belongs to a job you hold", 404)
        filename = field.name.rsplit("/", 1)[-1]
        # an object store serves the bytes itself (the worker checks their hash): none pass through here
        url = presigned_get(field.name, filename, "application/octet-stream")
        if url is not None:
            return HttpResponseRedirect(url)
        return FileResponse(field.open("rb"), as_attachment=True, filename=filename)
