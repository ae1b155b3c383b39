"""One error shape for every API answer: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from assay.server.submissions.services.errors import SubmissionError


def api_exception_handler(exc, context):
    if isinstance(exc, SubmissionError):
        return Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "; ".join(_flatten(response.data)) or "invalid request"
        code = "invalid"
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
        message = str(detail) if detail else exc.__class__.__name__
        code = getattr(detail, "code", code)
    response.data = {"error": {"code": str(code), "message": message}}
    return response


def _flatten(data, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [
            m for k, v in data.items() for m in _flatten(v, f"{prefix}{k}: " if k != "non_field_errors" else prefix)
        ]
    if isinstance(data, list):
        return [m for v in data for m in _flatten(v, prefix)]
    return [f"{prefix}{data}"]


def error(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=http_status)


def api_error_body(path: str, code: str, message: str) -> dict:
    """The error body of the API that owns ``path``: /api/v1 nests ``{code, message}``; the EvalAI-compatible
    paths answer ``{"error": "…", "detail": "…"}`` as EvalAI does (its CLI prints one or the other)."""
    if is_native(path):
        return {"error": {"code": code, "message": message}}
    return {"error": message, "detail": message, "code": code}


def is_native(path: str) -> bool:
    """Whether ``path`` is /api/v1's (the rest of /api/ is the EvalAI-compatible API)."""
    return path == "/api/v1" or path.startswith("/api/v1/")
