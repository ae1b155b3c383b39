"""A user's notification choices (e-mails about their team's submissions: on unless turned off)."""

from __future__ import annotations

from django.db.models import Q

from ..models import NotificationSettings


def settings_of(user) -> NotificationSettings:
    """The user's row, or an unsaved one holding the defaults."""
    return NotificationSettings.objects.filter(user=user).first() or NotificationSettings(user=user)


def wants_submission_emails(user) -> bool:
    return settings_of(user).submission_emails


def wanting_submission_emails(user_path: str = "") -> Q:
    """The same rule as a filter, for a query that reaches the user through ``user_path`` (``"user"`` from
    a team membership): no settings row, or e-mails on. One query for a whole team, not one per member."""
    at = f"{user_path}__" if user_path else ""
    return Q(**{f"{at}notification_settings__isnull": True}) | Q(
        **{f"{at}notification_settings__submission_emails": True}
    )


def set_submission_emails(user, on: bool) -> NotificationSettings:
    row, _ = NotificationSettings.objects.update_or_create(user=user, defaults={"submission_emails": bool(on)})
    return row
