"""Sending one e-mail to one user, as its own task: a slow or failing mail server never holds a request, and a
retry resends only the e-mail that failed."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from assay.server import tasks

TASK = "notifications.email"


def queue_email(user, subject: str, body: str) -> None:
    """Send ``subject``/``body`` (plain text) to ``user``'s address, from the task runner."""
    tasks.enqueue(TASK, {"user": user.pk, "subject": subject[:200], "body": body})


@tasks.handler(TASK)
def send_queued(payload: dict) -> None:
    user = get_user_model().objects.filter(pk=payload["user"], is_active=True).first()
    if user is None or not user.email:
        return  # gone, deactivated or without an address since: nothing to send
    send_now(user, payload["subject"], payload["body"])


def send_now(user, subject: str, body: str) -> None:
    """Send at once, from a task (its retry resends): a task whose only delivery is this e-mail sends it itself."""
    send_mail(subject[:200], body, None, [user.email])
