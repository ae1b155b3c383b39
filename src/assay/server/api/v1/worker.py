"""The worker protocol: claim (long-poll) → heartbeat → complete | release, leave, and files by hash.

A worker holding several jobs heartbeats and reports them in one request each (``worker/heartbeat``,
``worker/complete``); the one-job routes under ``worker/jobs/{id}/`` stay for older workers."""

from __future__ import annotations

from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.refusals import Refusal
from assay.server.storage import presigned_get
from assay.server.submissions.services import jobs, queue
from assay.server.submissions.services.errors import SubmissionError

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
    max_jobs = serializers.IntegerField(
        min_value=1,
        max_value=queue.MAX_JOBS_PER_CLAIM,
        required=False,
        help_text="Claim up to this many jobs at once (the worker's free evaluator slots); the answer is then "
        "{'jobs': [...]}. Without it: one job, as {'job': {...}}.",
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
        subs = queue.claim_several_waiting(
            request.auth,
            v["worker_id"],
            v.get("max_jobs", 1),
            wait=v["wait"],
            containers=v["containers"],
            code_bundles=v["code_bundles"],
        )
        if not subs:
            return Response(status=status.HTTP_204_NO_CONTENT)
        told = [jobs.with_inline_file(jobs.job_payload(sub), sub) for sub in subs]
        return Response({"jobs": told} if "max_jobs" in v else {"job": told[0]})


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


class HeldJobIn(serializers.Serializer):
    submission_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    attempt = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class HeartbeatSeveralIn(serializers.Serializer):
    jobs = HeldJobIn(
        many=True,
        allow_empty=False,
        max_length=queue.MAX_HEARTBEAT_JOBS,
        help_text="Every job the worker holds, as {'submission_id', 'attempt'}.",
    )


class BeatOut(serializers.Serializer):
    submission_id = serializers.IntegerField()
    attempt = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=[queue.EXTENDED, queue.LOST, queue.ENDED],
        help_text="extended: the lease runs on; lost: the job was offered again, a result is still taken if "
        "it comes first (finish and report it); ended: cancelled, completed or not yours (stop it).",
    )
    lease_expires_at = serializers.DateTimeField(allow_null=True)


class HeartbeatSeveralOut(serializers.Serializer):
    jobs = BeatOut(many=True)


class HeartbeatSeveralView(WorkerView):
    """One heartbeat for every job a worker holds (the batched protocol): one request per interval,
    not one per job; the one-job route stays for older workers."""

    @extend_schema(request=HeartbeatSeveralIn, responses={200: HeartbeatSeveralOut})
    def post(self, request: Request) -> Response:
        data = HeartbeatSeveralIn(data=request.data)
        data.is_valid(raise_exception=True)
        pairs = [(job["submission_id"], job["attempt"]) for job in data.validated_data["jobs"]]
        beats = queue.heartbeat_several(request.auth, pairs)
        return Response(HeartbeatSeveralOut({"jobs": beats}).data)


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
        sub = queue.complete(request.auth, submission_id, completion_of(v))
        return Response({"status": sub.status, "failure_reason": sub.failure_reason})


def completion_of(v: dict) -> queue.Completion:
    """A checked report (:class:`CompleteIn`'s validated data) as the services take it, whichever route."""
    return queue.Completion(
        attempt=v["attempt"],
        output=v.get("output"),
        error=v.get("error") or None,
        stdout=v.get("stdout", ""),
        stderr=v.get("stderr", ""),
        sandbox=v.get("sandbox", ""),
        cases=v.get("cases") or None,
        error_kind=v.get("error_kind"),
    )


class CompleteSeveralIn(serializers.Serializer):
    results = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=queue.MAX_JOBS_PER_CLAIM,
        help_text="Reports as /jobs/{id}/complete takes them, each with its 'submission_id'.",
    )


class CompleteOneIn(CompleteIn):
    submission_id = serializers.IntegerField(min_value=1)


class CompleteSeveralView(WorkerView):
    """Several results in one request (the batched worker protocol); each is taken or refused on its own."""

    @extend_schema(
        request=CompleteSeveralIn,
        responses={
            200: OpenApiResponse(
                description="{'results': [...]} in the order sent: {'submission_id', 'accepted': true, 'status', "
                "'failure_reason'} or {'submission_id', 'accepted': false, 'error': {'code', 'message'}, "
                "'http_status'} (what /jobs/{id}/complete would have answered)"
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = CompleteSeveralIn(data=request.data)
        data.is_valid(raise_exception=True)
        reports: list[tuple[int, queue.Completion | SubmissionError]] = []
        for item in data.validated_data["results"]:
            reports.append(_completion(item))
        answers = queue.complete_several(request.auth, reports)
        return Response({"results": [_answer(sid, answer) for (sid, _), answer in zip(reports, answers, strict=True)]})


def _completion(item: dict) -> tuple[int, queue.Completion | SubmissionError]:
    """One report of a batch, checked as the one-job route checks it; a bad one becomes its own refusal."""
    sid = item.get("submission_id")
    sid = sid if isinstance(sid, int) and not isinstance(sid, bool) else 0
    one = CompleteOneIn(data=item)
    if not one.is_valid():
        problems = "; ".join(f"{field}: {' '.join(map(str, errs))}" for field, errs in one.errors.items())
        return sid, SubmissionError("invalid", problems, 400)
    v = one.validated_data
    try:
        return v["submission_id"], completion_of(v)
    except SubmissionError as exc:
        return v["submission_id"], exc


def _answer(submission_id: int, answer) -> dict:
    if isinstance(answer, SubmissionError):
        error = {"code": answer.code, "message": answer.message}
        return {"submission_id": submission_id, "accepted": False, "error": error, "http_status": answer.status}
    taken = {"status": answer.status, "failure_reason": answer.failure_reason}
    return {"submission_id": submission_id, "accepted": True, **taken}


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
