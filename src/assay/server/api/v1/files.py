"""URLs that Assay serves itself where EvalAI hands out S3 presigned URLs.

With an object store (ASSAY_STORAGE_URL=s3://…) a stored file's URL answers with a redirect to a fresh
presigned URL of the store, once its signature is checked; results cut for a reader are still served here.

A download URL carries a signed, expiring reference to one stored file; an upload URL carries a
signed reference to one part of one upload. Whoever holds the URL may use it until it expires, as
with S3; nothing else about the server is reachable through it.
"""

from __future__ import annotations

import re

from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request

from assay.server.storage import presigned_get, safe_file_name
from assay.server.submissions.services.result_access import NOBODY

from .base import OpenView

DOWNLOAD_SALT = "assay.files.download"
RESULT_SALT = "assay.files.result"  # a submission's result document or log, cut for the reader given the URL
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
    return _signed_file_url(request, token, filename)


#: What a signed token (signing's URL-safe base64, "." and ":") and a ``safe_file_name`` ([A-Za-z0-9._-]) are made
#: of: characters that ``reverse`` and ``build_absolute_uri`` leave as they are.
_AS_IS = re.compile(r"[A-Za-z0-9._:-]+")
_TOKEN_MARK, _NAME_MARK = "TOKENMARK", "NAMEMARK"


def _signed_file_url(request: Request, token: str, filename: str) -> str:
    """``request.build_absolute_uri(reverse("api-signed-file", args=[token, filename]))``, from that URL built once
    per request with stand-ins: a list signs a URL or four per row, and reversing and making each one absolute
    cost as much as signing it. Exact: neither part holds a character either step would change (else the long way)."""
    parts = getattr(request, "_signed_file_url_parts", None)
    if parts is None:
        whole = request.build_absolute_uri(reverse("api-signed-file", args=[_TOKEN_MARK, _NAME_MARK]))
        rest, tail = whole.rsplit(_NAME_MARK, 1)
        head, middle = rest.rsplit(_TOKEN_MARK, 1)
        parts = request._signed_file_url_parts = (head, middle, tail)
    if not (_AS_IS.fullmatch(token) and _AS_IS.fullmatch(filename)):
        return request.build_absolute_uri(reverse("api-signed-file", args=[token, filename]))
    head, middle, tail = parts
    return f"{head}{token}{middle}{filename}{tail}"


def result_url(request: Request, reader, sub, field: str = "submission_result_file") -> str | None:
    """A signed URL of ``sub``'s result document, or of a log (``field``), as ``reader`` (a ``ResultReader``)
    may read it, or None.

    Hosts get the stored file; anyone else a URL naming the submission, the file and the reader, so the
    document is cut for them when it is downloaded (their rights are checked again then).
    """
    stored = getattr(sub, field)
    if not stored or reader.threshold(sub) == NOBODY:
        return None
    if reader.access(sub).is_host:
        return download_url(request, stored.name)
    user_id = reader.user.pk if getattr(reader.user, "is_authenticated", False) else None
    token = signing.dumps({"r": sub.pk, "u": user_id, "f": field}, salt=RESULT_SALT, compress=True)
    filename = "submission_result.json" if field == "submission_result_file" else stored.name.rsplit("/", 1)[-1]
    return _signed_file_url(request, token, safe_file_name(filename))


def upload_part_url(request: Request, upload_id: str, part: int) -> str:
    token = signing.dumps({"u": str(upload_id), "p": part}, salt=UPLOAD_SALT)
    return request.build_absolute_uri(reverse("api-upload-part-signed", args=[token]))


def read_upload_token(token: str) -> tuple[str, int] | None:
    try:
        data = signing.loads(token, salt=UPLOAD_SALT, max_age=UPLOAD_SECONDS)
        return str(data["u"]), int(data["p"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


class SignedFileView(OpenView):
    """Serves one stored file to whoever holds a valid, unexpired signed URL (the signature is the credential)."""

    authentication_classes: list = []

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="the file"),
            302: OpenApiResponse(description="with an object store: to a presigned URL of the file"),
            404: None,
        },
        summary="A stored file, by signed URL",
    )
    def get(self, request: Request, token: str, filename: str = ""):
        try:
            data = signing.loads(token, salt=DOWNLOAD_SALT, max_age=DOWNLOAD_SECONDS)
            name, filename = str(data["n"]), str(data["f"])
        except (signing.BadSignature, KeyError, TypeError, ValueError):
            return _result_document(token, filename)
        if not default_storage.exists(name):
            raise Http404("the file is gone")
        url = presigned_get(name, filename, "application/octet-stream", attachment=False)
        if url is not None:  # the object store serves it; the signature checked above allowed the read
            return HttpResponseRedirect(url)
        response = FileResponse(default_storage.open(name, "rb"), as_attachment=False, filename=filename)
        response["Content-Length"] = str(default_storage.size(name))
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Type"] = "application/octet-stream"
        return response


def _result_document(token: str, filename: str) -> HttpResponse:
    """A result document or log signed by :func:`result_url`, cut for the reader it was given to."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.errors import SubmissionError
    from assay.server.submissions.services.result_access import ResultReader

    try:
        data = signing.loads(token, salt=RESULT_SALT, max_age=DOWNLOAD_SECONDS)
        sub_id, user_id, field = int(data["r"]), data["u"], str(data.get("f", "submission_result_file"))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404("this link is invalid or has expired") from None
    sub = Submission.objects.select_related("phase__challenge__host_team").filter(pk=sub_id).first()
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if sub is None or (user_id and user is None):
        raise Http404("the file is gone")
    try:
        body = ResultReader(user or AnonymousUser()).document(sub, field)
    except SubmissionError:
        raise Http404("the file is gone") from None
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'inline; filename="{safe_file_name(filename)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
