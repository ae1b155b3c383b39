"""Delivering one webhook event: the signed POST, its bounds, and the delivery log.

The body is JSON; the ``Assay-Signature`` header is ``t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 with the webhook's secret over ``<t>.<body bytes>``. A receiver recomputes it, compares in
constant time and refuses a ``t`` too far from its clock (replays). ``Assay-Event`` names the event and
``Assay-Delivery`` the delivery (the same on every retry: receivers drop repeats by it).

A delivery succeeds on a 2xx answer; anything else (another status, a redirect — never followed —, a
timeout, a refused connection) is logged and retried by the task runner with backoff. The answer's body is
read up to 64 KiB and only its start is kept; the whole exchange is bounded by ``ASSAY_WEBHOOKS_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from assay.server import tasks
from assay.server.challenges.services.roles import is_host
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import ResultReader

from ..models import Webhook, WebhookDelivery
from .links import absolute
from .webhooks import DELIVER, WebhookRefused, refuse_private_target

MAX_RESPONSE_BYTES = 64 * 1024
KEPT_RESPONSE_CHARS = 300
USER_AGENT = "Assay-Webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Assay-Signature`` header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300, now: float | None = None) -> bool:
    """What a receiver does (documented in the README): the header's HMAC matches and its time is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


def payload(hook: Webhook, sub: Submission, event: str, delivery: str, occurred_at: str) -> dict:
    """What the receiver learns: the submission as the webhook's host reads it (ResultReader), no more."""
    reader = ResultReader(hook.created_by)
    challenge = sub.phase.challenge
    return {
        "id": delivery,
        "event": event,
        "occurred_at": occurred_at,
        "challenge": {"id": challenge.pk, "title": challenge.title},
        "phase": {"id": sub.phase_id, "codename": sub.phase.codename},
        "submission": {
            "id": sub.pk,
            "team": {"id": sub.participant_team_id, "name": sub.participant_team.name},
            "status": sub.status,
            "submitted_at": sub.submitted_at.isoformat(),
            "completed_at": sub.completed_at.isoformat() if sub.completed_at else None,
            "result": reader.result(sub),
            "failure_reason": sub.failure_reason if sub.status == Submission.Status.FAILED else "",
            "url": absolute("web:host-submissions", challenge.pk),
        },
    }


@tasks.handler(DELIVER)
def deliver(task: dict) -> None:
    hook = Webhook.objects.select_related("challenge", "created_by").filter(pk=task["webhook"]).first()
    if hook is None or not hook.active:
        return  # removed or paused since: nothing to deliver
    attempt = WebhookDelivery.objects.filter(webhook=hook, delivery_id=task["delivery"]).count() + 1
    log = WebhookDelivery(webhook=hook, delivery_id=task["delivery"], event=task["event"], attempt=attempt)
    sub = None
    if "data" not in task:  # a submission's event: read as the webhook's host reads it, when delivered
        sub = (
            Submission.objects.select_related("phase__challenge", "participant_team")
            .filter(pk=task["submission"])
            .first()
        )
        if sub is None:
            log.error = "the submission no longer exists"
            log.save()
            return
    if hook.created_by is None or not is_host(hook.created_by, hook.challenge):
        log.error = "the host who last saved this webhook is no longer a host: save it again to deliver"
        log.save()
        raise tasks.Permanent(log.error)
    if sub is None:  # made when the event was (leaderboard.changed: what the public saw then), the same on retries
        document = {"id": task["delivery"], "event": task["event"], "occurred_at": task["occurred_at"], **task["data"]}
    else:
        document = payload(hook, sub, task["event"], task["delivery"], task["occurred_at"])
    body = json.dumps(document).encode()
    started = time.monotonic()
    try:
        log.status_code, excerpt = post(hook, task["event"], task["delivery"], body)
        if not 200 <= log.status_code < 300:
            kind = "a redirect (not followed)" if 300 <= log.status_code < 400 else f"HTTP {log.status_code}"
            log.error = f"the receiver answered {kind}: {excerpt}".strip()
    except WebhookRefused as exc:
        log.error = exc.message
    except httpx.TimeoutException:
        log.error = f"no answer within {timeout()} s"
    except httpx.HTTPError as exc:
        log.error = f"{type(exc).__name__}: {exc}"[:1000]
    log.duration_ms = int((time.monotonic() - started) * 1000)
    log.save()
    if log.error:
        raise DeliveryFailed(log.error)


class DeliveryFailed(Exception):
    """Not delivered this time: the task runner tries again later."""


def timeout() -> float:
    return float(getattr(settings, "WEBHOOKS_TIMEOUT_SECONDS", 10))


def post(hook: Webhook, event: str, delivery: str, body: bytes) -> tuple[int, str]:
    """POST ``body`` signed; the status and the start of the answer (read up to 64 KiB). The target is checked
    again now (its name may resolve elsewhere than when it was saved)."""
    parts = urlsplit(hook.url)
    refuse_private_target(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Assay-Event": event,
        "Assay-Delivery": delivery,
        "Assay-Signature": signature(hook.secret, int(time.time()), body),
    }
    limit = timeout()
    deadline = time.monotonic() + limit
    with httpx.Client(timeout=limit, follow_redirects=False, trust_env=False) as client:
        with client.stream("POST", hook.url, content=body, headers=headers) as response:
            read = b""
            for chunk in response.iter_bytes():
                read += chunk
                if len(read) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    break
            return response.status_code, read[:KEPT_RESPONSE_CHARS].decode("utf-8", "replace").strip()
