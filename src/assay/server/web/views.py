"""Web pages. Thin: queries come from the services of the app that owns the data."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from assay.server.challenges.services.listing import visible_challenges


def challenge_list(request: HttpRequest) -> HttpResponse:
    challenges = visible_challenges(request.user)
    return render(request, "web/challenge_list.html", {"challenges": challenges})


def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and ``make demo``'s readiness wait: the database answers."""
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
