"""The native error shape ``{"error": {"code", "message"}}`` for the domain refusals of every service."""

from __future__ import annotations

from rest_framework.response import Response

from assay.server.accounts.tokens import TokenRefused
from assay.server.challenges.services.participation import ParticipationError
from assay.server.teams.services import TeamError

from .errors import api_exception_handler

DOMAIN_ERRORS = (TokenRefused, ParticipationError, TeamError)


def native_exception_handler(exc, context):
    if isinstance(exc, DOMAIN_ERRORS):
        body = {"error": {"code": exc.code, "message": exc.message}}
        problems = getattr(exc, "problems", None)
        if problems and len(problems) > 1:
            body["problems"] = problems
        return Response(body, status=exc.status)
    return api_exception_handler(exc, context)
