"""Models in Django's admin, for operators: a version's file, hash and digest are read-only (a version is
immutable; a new file is a new version), and versions are never deleted there (submissions name their files)."""

from __future__ import annotations

from django.contrib import admin

from .models import Model, ModelSubmission, ModelVersion


class VersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ("number", "label", "file_name", "file_sha256", "file_size", "image_digest", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "kind", "published_at", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "team__name")
    raw_id_fields = ("team", "created_by")
    readonly_fields = ("kind", "created_at")
    inlines = [VersionInline]


@admin.register(ModelSubmission)
class ModelSubmissionAdmin(admin.ModelAdmin):
    list_display = ("version", "submission")
    raw_id_fields = ("version", "submission")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("model", "number", "label", "file_sha256", "image_digest", "created_at")
    search_fields = ("model__name", "file_sha256", "image_digest")
    fields = ("model", "number", "label", "notes", "file", "file_name", "file_sha256", "file_size", "image_digest")
    readonly_fields = ("model", "number", "file", "file_name", "file_sha256", "file_size", "image_digest")

    def has_add_permission(self, request) -> bool:
        return False  # a version is registered with its file through the services

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
