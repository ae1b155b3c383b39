"""Helpers every web view uses: finding what the user may see, and turning service refusals into pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from assay.server.challenges.models import Challenge, ChallengePhase
from assay.server.challenges.services.participation import visible_to
from assay.server.challenges.services.roles import is_host, participation_of


def challenge_or_404(request: HttpRequest, pk: int) -> Challenge:
    """The challenge, if the user may see it; otherwise 404 (an unpublished challenge does not exist)."""
    challenge = get_object_or_404(Challenge.objects.select_related("host_team"), pk=pk)
    if not visible_to(request.user, challenge):
        raise Http404("no such challenge")
    return challenge


def hosted_or_404(request: HttpRequest, pk: int) -> Challenge:
    """The challenge, if the user hosts it; others get 404, so host pages do not reveal challenges."""
    challenge = get_object_or_404(Challenge.objects.select_related("host_team"), pk=pk)
    if not is_host(request.user, challenge):
        raise Http404("no such challenge")
    return challenge


def phase_or_404(challenge: Challenge, phase_id: Any) -> ChallengePhase:
    try:
        return challenge.phases.get(pk=int(phase_id))
    except (TypeError, ValueError, ChallengePhase.DoesNotExist):
        raise Http404("no such phase") from None


def challenge_context(request: HttpRequest, challenge: Challenge, tab: str) -> dict[str, Any]:
    """What the challenge header and its tabs need."""
    return {
        "challenge": challenge,
        "tab": tab,
        "is_host": is_host(request.user, challenge),
        "participation": participation_of(request.user, challenge),
    }


def refusal(request: HttpRequest, exc: Exception) -> None:
    """Show a service's refusal as an error message on the next page."""
    for problem in getattr(exc, "problems", None) or [getattr(exc, "message", str(exc))]:
        messages.error(request, problem)


def safe_target(request: HttpRequest, fallback: str) -> str:
    """The form's or query's ``next`` when it points into this site, else ``fallback``."""
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def safe_next(request: HttpRequest, fallback: str) -> HttpResponse:
    return redirect(safe_target(request, fallback))


def confirmation(
    request: HttpRequest, *, question: str, consequence: str, action: str, back: str
) -> HttpResponse | None:
    """None once the person has confirmed; otherwise a page that asks first.

    Destructive buttons post to their view as usual; the view answers with this page, whose form posts the
    same fields again with ``confirmed=yes``. Works without JavaScript, and a stray click changes nothing."""
    if request.POST.get("confirmed") == "yes":
        return None
    fields = [(k, v) for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirmed")]
    context = {"question": question, "consequence": consequence, "action": action, "back": back, "fields": fields}
    return render(request, "web/confirm.html", context)
