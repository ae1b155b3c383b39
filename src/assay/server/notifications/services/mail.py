"""Sending one e-mail to one user, as its own task: a slow or failing mail server never holds a request, and a
retry resends only the e-mail that failed."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.mail import get_connection, send_mail

from assay.server import tasks

TASK = "notifications.email"
log = logging.getLogger("assay.notifications")


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


def send_each(letters: list[tuple[object, str, str]]) -> list[BaseException | None]:
    """Send each ``(user, subject, body)`` as :func:`send_now` does (the same message, so the same bytes), over one
    connection of the mail backend (one SMTP session for a batch of tasks); for each, None when it was sent or the
    exception it failed with: a task whose e-mail failed is retried alone."""
    if not letters:
        return []
    connection = get_connection()
    try:
        connection.open()
    except Exception as exc:  # noqa: BLE001 - the mail server is down: every letter is retried
        return [exc] * len(letters)
    outcomes: list[BaseException | None] = []
    try:
        for user, subject, body in letters:
            try:
                send_mail(subject[:200], body, None, [user.email], connection=connection)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - this one is retried, the others stand
                outcomes.append(exc)
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - what was sent stays sent: a failed goodbye retries nothing
            log.warning("closing the mail connection failed", exc_info=True)
    return outcomes
