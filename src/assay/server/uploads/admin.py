from django.contrib import admin

from .models import Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "phase", "submission", "status", "size", "part_count", "expires_at")
    list_filter = ("status",)
    search_fields = ("user__username", "file_name")
    readonly_fields = ("sha256",)
