"""Authentication of workers by their queue token (``Authorization: Bearer aw_…``)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import TOKEN_PREFIX, authenticate_worker


class WorkerTokenAuthentication(authentication.BaseAuthentication):
    """A worker is not a user: ``request.user`` stays anonymous, ``request.auth`` is the token row."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip().startswith(TOKEN_PREFIX):
            return None
        row = authenticate_worker(token.strip())
        if row is None:
            raise exceptions.AuthenticationFailed("unknown or revoked worker token")
        return AnonymousUser(), row

    def authenticate_header(self, request):
        return 'Bearer realm="assay-worker"'


class IsWorker(permissions.BasePermission):
    message = "this endpoint needs a worker token (Authorization: Bearer aw_…)"

    def has_permission(self, request, view):
        return isinstance(request.auth, WorkerToken)


class IsUserOrWorker(permissions.BasePermission):
    """A signed-in user or a worker token: EvalAI's remote-evaluation routes take either (a host's script
    uses the host's token). Anyone else is asked for credentials (401) before any id is looked up."""

    def has_permission(self, request, view):
        return isinstance(request.auth, WorkerToken) or bool(getattr(request.user, "is_authenticated", False))


class WorkerTokenScheme(OpenApiAuthenticationExtension):
    target_class = WorkerTokenAuthentication
    name = "workerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A worker token scoped to one queue."}
