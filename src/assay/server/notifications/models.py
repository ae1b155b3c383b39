"""What notifications keep: a user's e-mail choice, a challenge's webhooks and their delivery log, when
a challenge's hosts were last told that its evaluations keep failing, and what each public leaderboard showed
when its last ``leaderboard.changed`` event was made."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class NotificationSettings(models.Model):
    """A user's choices; a user without a row gets the defaults (e-mails on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    submission_emails = models.BooleanField(
        default=True, help_text="E-mail me when a submission of my team finishes or fails."
    )

    def __str__(self) -> str:
        return f"notification settings of {self.user}"


class Webhook(models.Model):
    """A challenge's receiver of signed event POSTs. ``created_by`` is whose view of the results a payload
    carries (it must still be a host when a delivery is made)."""

    class Event(models.TextChoices):
        SUBMISSION_FINISHED = "submission.finished", "A submission was evaluated"
        SUBMISSION_FAILED = "submission.failed", "A submission's evaluation failed"
        LEADERBOARD_CHANGED = "leaderboard.changed", "A public leaderboard changed"

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of challenge {self.challenge_id} → {self.url}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event: what the receiver answered, how long it took, or what went wrong."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(
        max_length=36, help_text="The Assay-Delivery header: one per event, kept by retries."
    )
    event = models.CharField(max_length=50)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "created_at"], name="delivery_log")]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id} attempt {self.attempt}: {self.status_code or self.error[:40]}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class FailureAlert(models.Model):
    """When a challenge's hosts were last e-mailed that its evaluations keep failing (once per window)."""

    challenge = models.OneToOneField("challenges.Challenge", on_delete=models.CASCADE, related_name="failure_alert")
    sent_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"failure alert of challenge {self.challenge_id} at {self.sent_at:%Y-%m-%d %H:%M}"


class BoardSnapshot(models.Model):
    """A phase-split's leaderboard as an anonymous reader saw it at its last ``leaderboard.changed`` event
    (``{row key: {rank, submission, scores, …}}``): the next event names only the rows that differ from it."""

    phase_split = models.OneToOneField(
        "challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="notified_board"
    )
    rows = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"leaderboard of phase-split {self.phase_split_id} as last announced"
