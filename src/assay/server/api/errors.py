"""How a :class:`~assay.server.refusals.Refusal` reads on each API face, in one place.

/api/v1 nests ``{"error": {"code", "message"}}`` (plus ``problems`` when there are several); EvalAI's paths answer
``{"error": "…", "detail": "…", "code": …}`` as EvalAI does (its CLI prints ``error``, or ``detail`` for Django's
own errors). Every error of every API view goes through :func:`api_exception_handler`; what never reaches a view
(unknown routes, 413s, malformed paths) through the guard, which uses the same :func:`refusal_body`.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from assay.server.refusals import Refusal


def is_native(path: str) -> bool:
    """Whether ``path`` is /api/v1's (the rest of /api/ is the EvalAI-compatible API)."""
    return path == "/api/v1" or path.startswith("/api/v1/")


def refusal_body(path: str, refusal: Refusal) -> dict:
    """The JSON body of ``refusal`` in the shape of the API that owns ``path``."""
    if is_native(path):
        body: dict = {"error": {"code": refusal.code, "message": refusal.message}}
        if refusal.problems:
            body["problems"] = refusal.problems
        return body
    return {"error": refusal.message, "detail": refusal.message, "code": refusal.code}


def api_exception_handler(exc, context):
    """DRF's exception handler for both faces: a Refusal, or DRF's own errors read as one."""
    request = context.get("request")
    path = request.path_info if request is not None else "/api/v1/"
    if isinstance(exc, Refusal):
        refusal = exc
        if exc.status == 404 and not is_native(path):
            # EvalAI answers "X does not exist" with 406, which its CLI prints (a 404 it does not)
            refusal = Refusal(exc.code, exc.message, 406, exc.problems)
        retry_after = getattr(exc, "retry_after", None)  # a lock or limit that ends: say when, as DRF's 429s do
        return Response(
            refusal_body(path, refusal),
            status=refusal.status,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )
    response = exception_handler(exc, context)  # Http404, PermissionDenied, APIException; headers, rollback
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = response.data if isinstance(response.data, dict) else {}
        refusal = Refusal("invalid", "; ".join(_flatten(response.data)) or "invalid request", response.status_code)
        response.data = refusal_body(path, refusal)
        if not is_native(path):
            response.data = {**fields, **response.data}  # EvalAI keeps a serializer's field errors too
        return response
    detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = refusal_body(path, Refusal(str(code), str(detail) if detail else type(exc).__name__))
    return response


def _flatten(data, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [
            m for k, v in data.items() for m in _flatten(v, f"{prefix}{k}: " if k != "non_field_errors" else prefix)
        ]
    if isinstance(data, list):
        return [m for v in data for m in _flatten(v, prefix)]
    return [f"{prefix}{data}"]
