"""Notification pages: a user's e-mail choice (account), a challenge's webhooks and delivery log (hosts).

Thin: the rules (who manages webhooks, which URLs and events) are in
:mod:`assay.server.notifications.services`; a refusal comes back as a message on the page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from assay.server.notifications.models import Webhook
from assay.server.notifications.services import preferences, webhooks
from assay.server.notifications.services.webhooks import WebhookRefused

from .common import challenge_context, confirmation, hosted_or_404, refusal

DELIVERIES_SHOWN = 20


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        preferences.set_submission_emails(request.user, request.POST.get("submission_emails") == "on")
        messages.success(request, "Notification settings saved.")
        return redirect("web:notification-settings")
    context = {"settings_row": preferences.settings_of(request.user)}
    return render(request, "web/account/notifications.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    if request.method == "POST":
        try:
            hook = webhooks.create(request.user, challenge, request.POST.get("url", ""), request.POST.getlist("events"))
        except WebhookRefused as exc:
            refusal(request, exc)
        else:
            messages.success(request, f"Webhook {hook.pk} added: deliveries are signed with its secret, shown below.")
        return redirect("web:host-webhooks", challenge.pk)
    context = challenge_context(request, challenge, "host")
    context["host_tab"] = "webhooks"
    rows = list(webhooks.webhooks_of(request.user, challenge))
    context["hooks"] = [(hook, list(hook.deliveries.all()[:DELIVERIES_SHOWN])) for hook in rows]
    context["events"] = Webhook.Event.choices
    return render(request, "web/host/webhooks.html", context)


@login_required
@require_POST
def webhook_action(request: HttpRequest, pk: int, webhook_id: int, action: str) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    try:
        hook = webhooks.webhook_of(request.user, challenge, webhook_id)
    except WebhookRefused:
        raise Http404("no such webhook") from None
    back = reverse("web:host-webhooks", args=[challenge.pk])
    if action == "delete":
        asked = confirmation(
            request,
            question=f"Remove the webhook to {hook.url}?",
            consequence="Its delivery log goes with it, and deliveries not yet made are not made.",
            action="Remove webhook",
            back=back,
        )
        if asked is not None:
            return asked
        webhooks.delete(request.user, hook)
        messages.success(request, "Webhook removed.")
    elif action in ("pause", "resume"):
        webhooks.update(request.user, hook, active=action == "resume")
        messages.success(request, "Webhook paused." if action == "pause" else "Webhook resumed.")
    else:
        raise Http404("no such action")
    return redirect(back)
