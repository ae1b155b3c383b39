"""How a :class:`~assay.server.refusals.Refusal` reads on the web: one styled page in the site's layout (and,
for the site's own page scripts, :func:`refusal_json`).

Django's own error pages (unknown page, forbidden, bad request, server error) go through the same page, as
does a refusal a view lets escape (:class:`RefusalPages`); the /api/ faces render theirs as JSON
(:mod:`assay.server.api.errors`), so both middleware and handlers step aside for /api/ paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render

from assay.server.refusals import Refusal

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Conflict",
    410: "Removed",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
}


def refusal_page(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """The styled error page for ``refusal``, answered with its status."""
    title = TITLES.get(refusal.status, "Refused")
    return render(request, "web/error.html", {"refusal": refusal, "title": title}, status=refusal.status)


def refusal_json(refusal: Refusal) -> JsonResponse:
    """For the site's own page scripts (``upload.js`` shows ``message``), not an API: ``{"error": code, "message"}``."""
    return JsonResponse({"error": refusal.code, "message": refusal.message}, status=refusal.status)


class RefusalPages:
    """A refusal no web view caught becomes its page, not a 500 (the API faces answer theirs themselves)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, Refusal) and not request.path_info.startswith("/api/"):
            return refusal_page(request, exc)
        return None


def _said(exception: Exception | None, default: str) -> str:
    """The text an ``Http404("no such team")`` was given; Django's own resolver wording is not for people."""
    text = str(exception.args[0]) if exception is not None and exception.args else ""
    return text if text and isinstance(exception.args[0], str) else default


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_page(request, Refusal("invalid", "The request could not be understood.", 400))


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_page(request, Refusal("forbidden", _said(exception, "You may not see this page."), 403))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_page(request, Refusal("not_found", _said(exception, "There is no such page."), 404))


def server_error(request: HttpRequest) -> HttpResponse:
    """The page in the site's layout; if that cannot render either (the database is down), plain text."""
    try:
        return refusal_page(request, Refusal("server_error", "The server failed to answer; try again later.", 500))
    except Exception:  # noqa: BLE001 - the last resort must answer
        log.exception("the error page could not be rendered")
        return HttpResponseServerError("Server error", content_type="text/plain")
