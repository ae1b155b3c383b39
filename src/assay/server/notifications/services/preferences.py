"""A user's notification choices (e-mails about their team's submissions: on unless turned off)."""

from __future__ import annotations

from ..models import NotificationSettings


def settings_of(user) -> NotificationSettings:
    """The user's row, or an unsaved one holding the defaults."""
    return NotificationSettings.objects.filter(user=user).first() or NotificationSettings(user=user)


def wants_submission_emails(user) -> bool:
    return settings_of(user).submission_emails


def set_submission_emails(user, on: bool) -> NotificationSettings:
    row, _ = NotificationSettings.objects.update_or_create(user=user, defaults={"submission_emails": bool(on)})
    return row
