from django.contrib import admin

from .models import Submission, SubmissionAttempt, SubmissionCases, WorkerToken


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "phase", "participant_team", "status", "submitted_at", "is_public", "is_baseline")
    list_filter = ("status", "is_public", "is_flagged", "is_baseline", "is_verified_by_host")
    search_fields = ("participant_team__name", "created_by__username", "method_name")
    readonly_fields = ("input_file_sha256", "input_file_size", "attempt", "lease_owner", "lease_expires_at")


@admin.register(WorkerToken)
class WorkerTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "queue_name", "prefix", "created_by", "created_at", "revoked_at", "last_used_at")
    list_filter = ("queue_name",)
    readonly_fields = ("token_hash", "prefix", "last_used_at")


@admin.register(SubmissionCases)
class SubmissionCasesAdmin(admin.ModelAdmin):
    """Per-case rows as stored: read-only (the trail and the manifest name their SHA-256)."""

    list_display = ("submission", "count", "sha256", "created_at")
    readonly_fields = ("submission", "file", "sha256", "count", "columns", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SubmissionAttempt)
class SubmissionAttemptAdmin(admin.ModelAdmin):
    """Earlier evaluations kept by a host's re-run: read-only history."""

    list_display = ("submission", "number", "status", "completed_at", "rerun_by", "rerun_at")
    readonly_fields = (
        "submission", "number", "status", "started_at", "completed_at", "output", "failure_reason", "rerun_by",
        "rerun_at",
    )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
