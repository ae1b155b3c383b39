"""Resumable chunked uploads with checksums: begin → PUT parts (any order, again if lost) → complete.

``PUT`` of a part answers an ``ETag`` header, so the same endpoint also serves the part URLs that
the EvalAI-compatible ``--large`` flow hands out in place of S3 presigned URLs.
"""

from __future__ import annotations

from collections.abc import Iterator

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.api.throttling import ScopedRateThrottle
from assay.server.refusals import Refusal
from assay.server.submissions.services.submit import gate
from assay.server.uploads import services as uploads
from assay.server.uploads.models import Upload

from .base import ApiView, OpenView, not_found
from .files import read_upload_token, upload_part_url
from .phases import visible_phase
from .submissions import DescriptionIn, SubmissionOut, submission_data


class UploadIn(DescriptionIn):
    file_name = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=0, help_text="Total bytes of the file.")
    sha256 = serializers.CharField(max_length=64, min_length=64, help_text="SHA-256 (hex) of the whole file.")
    chunk_size = serializers.IntegerField(min_value=1024, max_value=uploads.MAX_CHUNK, default=uploads.DEFAULT_CHUNK)


class UploadOut(serializers.Serializer):
    """What :func:`upload_data` answers (described for the OpenAPI schema; the view builds the dict)."""

    id = serializers.UUIDField()
    phase = serializers.IntegerField()
    submission = serializers.IntegerField(allow_null=True, help_text="Set once the upload became a submission.")
    file_name = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_blank=True)
    chunk_size = serializers.IntegerField()
    part_count = serializers.IntegerField()
    received_parts = serializers.ListField(child=serializers.IntegerField())
    missing_parts = serializers.ListField(child=serializers.IntegerField())
    received_bytes = serializers.IntegerField()
    status = serializers.CharField(help_text=" | ".join(Upload.Status.values))
    failure_reason = serializers.CharField(allow_blank=True)
    expires_at = serializers.DateTimeField()


class NewUploadOut(UploadOut):
    part_urls = serializers.ListField(
        child=serializers.URLField(),
        help_text="Where to PUT each part (1 to part_count), signed; for clients without a token.",
    )


class PartOut(serializers.Serializer):
    part = serializers.IntegerField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class FinishedUploadOut(serializers.Serializer):
    upload = UploadOut()
    submission = SubmissionOut()


def upload_data(request: Request, upload: Upload, with_urls: bool = False) -> dict:
    data = {
        "id": str(upload.pk),
        "phase": upload.phase_id,
        "submission": upload.submission_id,
        "file_name": upload.file_name,
        "size": upload.size,
        "sha256": upload.sha256,
        "chunk_size": upload.chunk_size,
        "part_count": upload.part_count,
        "received_parts": sorted(int(n) for n in upload.parts),
        "missing_parts": uploads.missing_parts(upload),
        "received_bytes": upload.received_bytes,
        "status": upload.status,
        "failure_reason": upload.failure_reason,
        "expires_at": upload.expires_at,
    }
    if with_urls:
        data["part_urls"] = [upload_part_url(request, str(upload.pk), n) for n in range(1, upload.part_count + 1)]
    return data


def own_upload(user, upload_id: str) -> Upload:
    upload = Upload.objects.select_related("submission", "phase").filter(pk=_uuid(upload_id), user=user).first()
    if upload is None:
        raise not_found("upload")
    return upload


def _uuid(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def body_chunks(request: Request, limit: int) -> Iterator[bytes]:
    """The raw request body in 1 MiB blocks, stopping one byte past ``limit`` (the caller refuses it)."""
    raw = request._request
    read = 0
    while read <= limit:
        block = raw.read(min(1024 * 1024, limit + 1 - read))
        if not block:
            return
        read += len(block)
        yield block


class PhaseUploadsView(ApiView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submit"

    @extend_schema(request=UploadIn, responses={201: NewUploadOut}, summary="Begin a resumable upload")
    def post(self, request: Request, phase_id: int) -> Response:
        phase = visible_phase(request.user, phase_id)
        participation = gate(request.user, phase)  # who may submit, before what they sent is judged
        data = UploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = uploads.begin(
            request.user,
            phase,
            v["file_name"],
            data.submission_fields(),
            size=v["size"],
            sha256=v["sha256"],
            chunk_size=v["chunk_size"],
            participation=participation,
        )
        return Response(upload_data(request, upload, with_urls=True), status=201)


class UploadView(ApiView):
    @extend_schema(responses={200: UploadOut}, summary="What has arrived (to resume)")
    def get(self, request: Request, upload_id: str) -> Response:
        return Response(upload_data(request, own_upload(request.user, upload_id)))

    @extend_schema(responses={204: None}, summary="Abandon an upload")
    def delete(self, request: Request, upload_id: str) -> Response:
        uploads.abort(own_upload(request.user, upload_id), "the participant abandoned the upload")
        return Response(status=204)


class OctetStream(parsers.BaseParser):
    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover - never called
        return stream


def _store_part(request: Request, upload: Upload, part: int) -> Response:
    checksum = request.headers.get("X-Checksum-Sha256", "").strip()
    info = uploads.put_part(upload, part, body_chunks(request, upload.chunk_size), checksum)
    response = Response({"part": part, "size": info["size"], "sha256": info["sha256"]})
    response["ETag"] = f'"{info["md5"]}"'
    return response


class UploadPartView(ApiView):
    parser_classes = [OctetStream]

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("X-Checksum-Sha256", str, OpenApiParameter.HEADER, description="of this part")],
        responses={200: PartOut},
        summary="Send one part (again, if it was lost)",
    )
    def put(self, request: Request, upload_id: str, part: int) -> Response:
        return _store_part(request, own_upload(request.user, upload_id), part)


class SignedUploadPartView(OpenView):
    """A part URL handed out by the EvalAI-compatible ``--large`` flow: the signature is the credential."""

    authentication_classes: list = []
    parser_classes = [OctetStream]

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, responses={200: PartOut})
    def put(self, request: Request, token: str) -> Response:
        ref = read_upload_token(token)
        upload = Upload.objects.filter(pk=ref[0]).first() if ref else None
        if upload is None:
            raise Refusal("not_found", "this upload link is invalid or has expired", 404)
        return _store_part(request, upload, ref[1])


class UploadCompleteView(ApiView):
    @extend_schema(request=None, responses={200: FinishedUploadOut}, summary="Join the parts and submit")
    def post(self, request: Request, upload_id: str) -> Response:
        upload = own_upload(request.user, upload_id)
        sub = uploads.finish(upload)
        return Response({"upload": upload_data(request, upload), "submission": submission_data(request, sub)})
