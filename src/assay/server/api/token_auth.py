"""Authentication by personal API token: ``Authorization: Bearer ap_…`` (or ``Token ap_…``, as EvalAI's
``get_auth_token`` call sends). Worker tokens (``aw_…``) are left to :mod:`.auth`."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from assay.server.accounts.tokens import TOKEN_PREFIX, check_token
from assay.server.submissions.services.tokens import TOKEN_PREFIX as WORKER_PREFIX

MESSAGES = {
    "unknown": ("token_invalid", "unknown API token: log in again (assay login) or create a token"),
    "revoked": ("token_revoked", "this API token was revoked: log in again (assay login) or create a new token"),
    "expired": ("token_expired", "this API token has expired: log in again (assay login) or create a new token"),
}


class TokenFailed(exceptions.AuthenticationFailed):
    """Carries which of unknown/revoked/expired it was, so each API can word it its own way."""

    def __init__(self, problem: str) -> None:
        code, message = MESSAGES.get(problem, MESSAGES["unknown"])
        super().__init__(message, code=code)
        self.problem = problem


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() not in self.keywords or not token:
            return None
        if token.startswith(WORKER_PREFIX):
            return None  # a worker token: WorkerTokenAuthentication's business
        if not token.startswith(TOKEN_PREFIX):
            raise TokenFailed("unknown")
        check = check_token(token)
        if check.row is None:
            raise TokenFailed(check.problem or "unknown")
        return check.row.user, check.row

    def authenticate_header(self, request):
        return 'Bearer realm="assay"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (ap_…): assay login."}
