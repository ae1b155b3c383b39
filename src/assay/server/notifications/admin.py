from django.contrib import admin

from .models import FailureAlert, NotificationSettings, Webhook, WebhookDelivery


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
