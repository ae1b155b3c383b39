"""``/metrics`` (Prometheus text) and ``/readyz`` (JSON): plain Django views, no login, no throttle."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import readiness
from .access import check_metrics_reader
from .metrics import exposition

#: The classic text format, which every Prometheus reads (names here need none of version 1.0.0's escapes).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    check_metrics_reader(request)
    return HttpResponse(exposition(), content_type=TEXT_FORMAT)


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, else 503 naming the ones that did not (``not_ready``); ``?skip=workers``
    (names, comma-separated) leaves checks out."""
    skip = frozenset(name.strip() for name in request.GET.get("skip", "").split(",") if name.strip())
    unknown = sorted(skip - set(readiness.CHECKS))
    if unknown:
        message = f"skip: {', '.join(unknown)[:100]} is no check; the checks are {', '.join(readiness.CHECKS)}"
        return JsonResponse({"error": "invalid", "message": message}, status=400)
    checks = readiness.checks(skip)
    failed = [c.name for c in checks if not c.ok]
    body = {
        "status": "not ready" if failed else "ready",
        "not_ready": failed,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return JsonResponse(body, status=503 if failed else 200)
