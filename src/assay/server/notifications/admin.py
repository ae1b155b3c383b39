from django.contrib import admin

from .models import BoardSnapshot, FailureAlert, NotificationSettings, Webhook, WebhookDelivery


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "submission_emails")
    raw_id_fields = ("user",)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("id", "challenge", "url", "active", "created_at")
    list_filter = ("active",)
    exclude = ("secret",)  # shown to the hosts on their page, never in lists
    raw_id_fields = ("challenge", "created_by")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "webhook", "event", "attempt", "status_code", "duration_ms", "created_at")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]


@admin.register(FailureAlert)
class FailureAlertAdmin(admin.ModelAdmin):
    list_display = ("challenge", "sent_at")


@admin.register(BoardSnapshot)
class BoardSnapshotAdmin(admin.ModelAdmin):
    """Read-only: what the last ``leaderboard.changed`` event said; editing it would change the next event's rows."""

    list_display = ("phase_split", "updated_at")
    readonly_fields = [f.name for f in BoardSnapshot._meta.fields]
    raw_id_fields = ("phase_split",)
