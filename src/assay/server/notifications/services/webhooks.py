"""A challenge's outbound webhooks: the hosts' rules for adding, changing and removing them, the URL rules
(http(s) only, no private-network target unless the operator allows it: SSRF), and queuing deliveries.

Only the challenge's hosts (``challenges.services.roles.is_host``) see or change its webhooks; the secret is
made here (``whsec_`` + 32 random bytes) and shown to them, never chosen by them.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from assay.server import tasks
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.roles import is_host
from assay.server.prepared import Prepared
from assay.server.refusals import Refusal
from assay.server.submissions.models import Submission

from ..models import Webhook, WebhookDelivery

EVENTS = tuple(Webhook.Event.values)
MAX_PER_CHALLENGE = 10
MAX_URL = 2000
DELIVER = "notifications.webhook"


class WebhookRefused(Refusal):
    """A webhook rule said no."""


def require_host(user, challenge: Challenge) -> None:
    if not is_host(user, challenge):
        raise WebhookRefused("forbidden", "only the challenge's hosts manage its webhooks", 403)


def webhooks_of(user, challenge: Challenge) -> QuerySet:
    require_host(user, challenge)
    return Webhook.objects.filter(challenge=challenge)


def webhook_of(user, challenge: Challenge, webhook_id: int) -> Webhook:
    row = webhooks_of(user, challenge).filter(pk=webhook_id).first()
    if row is None:
        raise WebhookRefused("not_found", "no such webhook", 404)
    return row


def deliveries_of(user, challenge: Challenge, webhook_id: int) -> QuerySet:
    return WebhookDelivery.objects.filter(webhook=webhook_of(user, challenge, webhook_id))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create(user, challenge: Challenge, url: str, events: list[str]) -> Webhook:
    require_host(user, challenge)
    if Webhook.objects.filter(challenge=challenge).count() >= MAX_PER_CHALLENGE:
        raise WebhookRefused("too_many", f"a challenge has at most {MAX_PER_CHALLENGE} webhooks", 409)
    return Webhook.objects.create(
        challenge=challenge, url=check_url(url), secret=new_secret(), events=check_events(events), created_by=user
    )


def update(
    user, webhook: Webhook, *, url: str | None = None, events: list[str] | None = None, active: bool | None = None
) -> Webhook:
    require_host(user, webhook.challenge)
    if url is not None:
        webhook.url = check_url(url)
    if events is not None:
        webhook.events = check_events(events)
    if active is not None:
        webhook.active = bool(active)
    webhook.created_by = user  # payloads now carry what this host may read
    webhook.save()
    return webhook


def delete(user, webhook: Webhook) -> None:
    require_host(user, webhook.challenge)
    webhook.delete()


def check_events(events: list[str]) -> list[str]:
    if not isinstance(events, list) or not events:
        raise WebhookRefused("invalid", f"choose at least one event: {', '.join(EVENTS)}")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise WebhookRefused("invalid", f"unknown event {str(unknown[0])[:50]!r}; the events are {', '.join(EVENTS)}")
    return sorted(set(events))


def check_url(url: str) -> str:
    """An http(s) URL with a host, at most 2000 characters, that does not point into a private network (unless
    ``ASSAY_WEBHOOKS_ALLOW_PRIVATE``); refused with why otherwise."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookRefused("invalid", f"a webhook URL is an http(s) URL of at most {MAX_URL} characters, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused("invalid", "the webhook URL cannot be read (a bad port or address?)") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookRefused("invalid", "a webhook URL starts with http:// or https://")
    if not parts.hostname:
        raise WebhookRefused("invalid", "the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused(
            "invalid", "a webhook URL carries no user name or password: the signature proves the sender"
        )
    refuse_private_target(parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80))
    return url


def refuse_private_target(host: str, port: int) -> None:
    """Refuse a host that is, or resolves to, an address outside the public internet (loopback, private
    ranges, link-local with the cloud metadata address, …), unless the operator allows private targets."""
    if getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False):
        return
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        raise WebhookRefused("invalid", f"the webhook's host {host[:100]!r} cannot be resolved") from None
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            raise WebhookRefused(
                "private_target",
                f"the webhook's host {host[:100]!r} is in a private network ({address}); the operator may allow"
                " that with ASSAY_WEBHOOKS_ALLOW_PRIVATE=1",
            )


# A challenge's active webhooks, asked after every result: compiled once per database, run with the challenge's id
# (no challenge has a negative one).
_ACTIVE_HOOKS: dict[str, Prepared] = {}
_CHALLENGE_MARK = -101


def _active_hooks_query() -> Prepared:
    if connection.alias not in _ACTIVE_HOOKS:
        qs = Webhook.objects.filter(challenge_id=_CHALLENGE_MARK, active=True).order_by("id")
        _ACTIVE_HOOKS[connection.alias] = Prepared(qs, challenge=_CHALLENGE_MARK)
    return _ACTIVE_HOOKS[connection.alias]


def wanting(sub: Submission, event: str) -> list[Webhook]:
    """The active webhooks of the submission's challenge that want ``event`` (a read: no transaction needed)."""
    return [hook for hook in _active_hooks_query().instances(challenge=sub.phase.challenge_id) if event in hook.events]


def queue_deliveries(sub: Submission, event: str, occurred_at: str, hooks: list[Webhook] | None = None) -> int:
    """One delivery task per active webhook of the submission's challenge that wants ``event`` (``hooks``: as
    :func:`wanting` just answered); how many."""
    if hooks is None:
        hooks = wanting(sub, event)
    count = 0
    for hook in hooks:
        tasks.enqueue(
            DELIVER,
            {
                "webhook": hook.pk,
                "event": event,
                "delivery": str(uuid.uuid4()),  # the Assay-Delivery header: retries keep it
                "submission": sub.pk,
                "occurred_at": occurred_at,
            },
            max_attempts=int(getattr(settings, "WEBHOOKS_MAX_ATTEMPTS", 8)),
        )
        count += 1
    return count
