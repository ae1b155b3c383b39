"""URLs that Assay serves itself where EvalAI hands out S3 presigned URLs (local storage).

A download URL carries a signed, expiring reference to one stored file; an upload URL carries a
signed reference to one part of one upload. Whoever holds the URL may use it until it expires, as
with S3; nothing else about the server is reachable through it.
"""

from __future__ import annotations

from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from assay.server.storage import safe_file_name

DOWNLOAD_SALT = "assay.files.download"
UPLOAD_SALT = "assay.files.upload-part"
DOWNLOAD_SECONDS = 3600
UPLOAD_SECONDS = 24 * 3600


def download_url(request: Request, name: str, filename: str | None = None) -> str | None:
    """An absolute, signed URL of the stored file ``name`` (None when there is no file)."""
    if not name:
        return None
    filename = safe_file_name(filename or name.rsplit("/", 1)[-1])
    token = signing.dumps({"n": name, "f": filename}, salt=DOWNLOAD_SALT, compress=True)
    # the file's own name ends the URL: EvalAI clients name the downloaded file after the last segment
    return request.build_absolute_uri(reverse("api-signed-file", args=[token, filename]))


def upload_part_url(request: Request, upload_id: str, part: int) -> str:
    token = signing.dumps({"u": str(upload_id), "p": part}, salt=UPLOAD_SALT)
    return request.build_absolute_uri(reverse("api-upload-part-signed", args=[token]))


def read_upload_token(token: str) -> tuple[str, int] | None:
    try:
        data = signing.loads(token, salt=UPLOAD_SALT, max_age=UPLOAD_SECONDS)
        return str(data["u"]), int(data["p"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


class SignedFileView(APIView):
    """Serves one stored file to whoever holds a valid, unexpired signed URL."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(description="the file"), 404: None},
        summary="A stored file, by signed URL",
    )
    def get(self, request: Request, token: str, filename: str = ""):
        try:
            data = signing.loads(token, salt=DOWNLOAD_SALT, max_age=DOWNLOAD_SECONDS)
            name, filename = str(data["n"]), str(data["f"])
        except (signing.BadSignature, KeyError, TypeError, ValueError):
            raise Http404("this link is invalid or has expired") from None
        if not default_storage.exists(name):
            raise Http404("the file is gone")
        response = FileResponse(default_storage.open(name, "rb"), as_attachment=False, filename=filename)
        response["Content-Length"] = str(default_storage.size(name))
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Type"] = "application/octet-stream"
        return response
