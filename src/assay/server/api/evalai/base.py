"""EvalAI's conventions: ``{"error": "…"}`` bodies, ``{"detail": …}`` for token problems (the CLI
matches "Invalid token" and "Token has expired"), page-number pagination of 150, dates ending in Z."""

from __future__ import annotations

import datetime as dt

from rest_framework import pagination, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from assay.server.submissions.services.errors import SubmissionError

from ..auth import WorkerTokenAuthentication
from ..errors import api_exception_handler
from ..token_auth import ApiTokenAuthentication, TokenFailed

EVALAI_DETAIL = {"expired": "Token has expired", "unknown": "Invalid token", "revoked": "Invalid token"}


def evalai_exception_handler(exc, context):
    """A refused token answers the ``detail`` texts the CLI matches; everything else as every API error."""
    if isinstance(exc, TokenFailed):
        detail = EVALAI_DETAIL.get(exc.problem, "Invalid token")
        return Response({"detail": detail, "code": "token_not_valid", "error": str(exc.detail)}, status=401)
    return api_exception_handler(exc, context)


class Pages(pagination.PageNumberPagination):
    page_size = 150
    page_size_query_param = "page_size"
    max_page_size = 1000


class EvalAIView(APIView):
    authentication_classes = [ApiTokenAuthentication, WorkerTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]

    def get_exception_handler(self):
        return evalai_exception_handler

    def dispatch(self, request, *args, **kwargs):
        # re_path hands ids over as text; the views (and the services) compare them as numbers
        kwargs = {k: int(v) if k.endswith("_id") and str(v).isdigit() else v for k, v in kwargs.items()}
        return super().dispatch(request, *args, **kwargs)

    def paginate(self, request, items, serialize) -> Response:
        pager = Pages()
        page = pager.paginate_queryset(items, request, view=self)
        return pager.get_paginated_response([serialize(item) for item in page])


class EvalAIReadView(EvalAIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]


def fail(message: str, status: int = 400, code: str = "error") -> SubmissionError:
    return SubmissionError(code, message, status)


def date(value: dt.datetime | None) -> str | None:
    """``2024-01-01T00:00:00Z`` / ``…T00:00:00.123456Z``: the two formats evalai CLI parses."""
    if value is None:
        return None
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ")
