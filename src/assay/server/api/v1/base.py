"""What every /api/v1 view shares: its base classes, pagination, role look-ups, uploaded-bundle handling.

One style for every resource module of /api/v1 (accounts, teams, challenges, phases, uploads, submissions,
leaderboards, files, worker tokens, worker): a view is a class over :class:`ApiView` (or
:class:`PublicReadView` / :class:`OpenView` / the worker's own base) that validates input with a serializer,
calls a service, and answers a serializer's data; a refusal is *raised* (a
:class:`~assay.server.refusals.Refusal`), never built as a response, so
:func:`assay.server.api.errors.api_exception_handler` renders every error the same way; a list is a page
(:meth:`ApiView.paginate`, with ``pagination_class`` set so the schema documents the page). This is the
style the newer endpoints were written in: the schema is generated from the serializers the views really
answer with, and the rules stay in the services.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from rest_framework import pagination, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assay.server.challenges.models import Challenge
from assay.server.challenges.services.listing import visible_challenges
from assay.server.challenges.services.roles import is_host
from assay.server.refusals import Refusal


class FieldsOnce:
    """A serializer mixin: the fields are built once per class and each instance gets shallow copies to bind
    (DRF rebuilds them every time: from the model's metadata for a ``ModelSerializer``, by a deep copy that
    calls every field's constructor again for a plain one; a third of serializing one submission, and of
    validating a submit's form). For flat serializers only: fields that hold other fields (nested
    serializers, lists) or depend on the instance or context must not use it. Binding sets a copy's name
    and parent; validating and representing keep nothing on a field, so the copies share the rest (their
    validators among it) safely."""

    def get_fields(self):
        cls = type(self)
        if "_fields_once" not in cls.__dict__:
            cls._fields_once = super().get_fields()
        return {name: _shallow_copy(field) for name, field in cls._fields_once.items()}


def _shallow_copy(field: serializers.Field) -> serializers.Field:
    """``copy.copy`` of a field without the pickling protocol it goes through (most of its cost)."""
    mine = object.__new__(type(field))
    mine.__dict__.update(field.__dict__)
    return mine


class Pages(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (at most 200); answers ``{count, next, previous, results}``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ApiView(APIView):
    """Base of the /api/v1 endpoints: personal tokens or a browser session; signed-in users only."""

    permission_classes = [permissions.IsAuthenticated]

    def paginate(self, request: Request, queryset: QuerySet | list, serialize, context: dict | None = None) -> Response:
        """``serialize``: a serializer class, given ``context`` (one instance serialises the whole page: DRF
        builds its fields once, not per row — that was 60% of the challenge list's time) or a function of
        one item."""
        pager = Pages()
        page = pager.paginate_queryset(queryset, request, view=self)
        if isinstance(serialize, type) and issubclass(serialize, serializers.BaseSerializer):
            return pager.get_paginated_response(serialize(page, many=True, context=context or {}).data)
        return pager.get_paginated_response([serialize(item) for item in page])


class PublicReadView(ApiView):
    """Reading is open to everyone (what they may see is filtered); writing needs a signed-in user."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]


class OpenView(ApiView):
    """Open to everyone, for every method it has (the services decide what each reader may see)."""

    permission_classes = [permissions.AllowAny]


def checked_body(request: Request, serializer_class: type[serializers.Serializer]) -> dict:
    """The JSON object body, validated by ``serializer_class`` (400 with DRF's field errors otherwise)."""
    if not isinstance(request.data, dict):
        raise Refusal("invalid", "the body is a JSON object", 400)
    checked = serializer_class(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


def not_found(what: str) -> Refusal:
    return Refusal("not_found", f"no such {what}", 404)


def visible_challenge(user, challenge_id: int) -> Challenge:
    """The challenge if ``user`` may see it; a hidden one is 'not found' (never 'forbidden': no probing)."""
    challenge = visible_challenges(user).filter(pk=challenge_id).first()
    if challenge is None:
        raise not_found("challenge")
    return challenge


def hosted_challenge(user, challenge_id: int) -> Challenge:
    challenge = Challenge.objects.select_related("host_team").filter(pk=challenge_id).first()
    if challenge is None or not is_host(user, challenge):
        if challenge is not None and visible_challenges(user).filter(pk=challenge.pk).exists():
            raise Refusal("forbidden", "only the challenge's hosts may do this", 403)
        raise not_found("challenge")
    return challenge


@contextmanager
def uploaded_path(upload: UploadedFile, suffix: str = ".zip") -> Iterator[Path]:
    """A path on disk for an uploaded file (large uploads already have one; small ones are written out)."""
    temp_path = getattr(upload, "temporary_file_path", None)
    if temp_path is not None:
        yield Path(temp_path())
        return
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="assay-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield Path(name)
    finally:
        os.unlink(name)


def only_native_paths(endpoints):
    """drf-spectacular hook: describe /api/v1 only (the EvalAI-compatible paths copy EvalAI's own API)."""
    return [e for e in endpoints if e[0].startswith("/api/v1/")]
