from django.contrib import admin

from .models import Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Read what the runner did; a stuck or failed task shows its last error."""

    list_display = ("id", "name", "state", "attempts", "max_attempts", "run_after", "updated_at")
    list_filter = ("state", "name")
    readonly_fields = ("created_at", "updated_at")
    search_fields = ("name", "last_error")
