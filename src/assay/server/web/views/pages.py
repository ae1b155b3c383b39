"""Pages anyone may read: the challenge list and a challenge's public tabs."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from assay.server.challenges.models import Challenge
from assay.server.challenges.services.browse import WHEN, all_tags, browse
from assay.server.challenges.services.listing import phases_seen

from .common import challenge_context, challenge_or_404


def challenge_list(request: HttpRequest) -> HttpResponse:
    when = request.GET.get("when", "ongoing")
    if when not in WHEN:
        when = "ongoing"
    q = request.GET.get("q", "")[:100]
    tag = request.GET.get("tag", "")[:50]
    domain = request.GET.get("domain", "")[:5]
    challenges = browse(request.user, when=when, q=q, tag=tag, domain=domain)[:200]
    context = {
        "challenges": challenges,
        "when": when,
        "q": q,
        "tag": tag,
        "domain": domain,
        "tags": all_tags(request.user),
        "domains": Challenge.Domain.choices,
        "whens": [("ongoing", "Ongoing"), ("upcoming", "Upcoming"), ("past", "Past"), ("all", "All")],
    }
    template = "web/_challenge_cards.html" if request.htmx else "web/challenge_list.html"
    return render(request, template, context)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: this process answers requests (200 whenever this view runs). It asks nothing else: a
    database outage or a dead in-process worker must not get a healthy server restarted; whether it is
    ready for traffic (database, storage, workers — the in-process worker among them) is ``/readyz``'s."""
    return JsonResponse({"status": "ok"})


def overview(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    context = challenge_context(request, challenge, "overview")
    context["prizes"] = challenge.prizes.all()
    context["sponsors"] = challenge.sponsors.all()
    return render(request, "web/challenge/overview.html", context)


def evaluation(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    return render(request, "web/challenge/evaluation.html", challenge_context(request, challenge, "evaluation"))


def terms(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    return render(request, "web/challenge/terms.html", challenge_context(request, challenge, "terms"))


def phases(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    context = challenge_context(request, challenge, "phases")
    host = context["is_host"]
    context["phases"] = list(phases_seen(challenge, host))
    return render(request, "web/challenge/phases.html", context)


def logo(request: HttpRequest, pk: int) -> HttpResponse:
    """The challenge's logo (PNG or JPEG, checked at import), for whoever may see the challenge."""
    challenge = challenge_or_404(request, pk)
    name = challenge.image.name
    if not name or not default_storage.exists(name):
        raise Http404("no logo")
    content_type = "image/png" if name.lower().endswith(".png") else "image/jpeg"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
