"""Data packages in Django's admin, for operators: cards and titles are editable; versions and their files are
read-only and never deleted (phases pin them); access requests are decided by the data owners through the
services, and the download log is append-only, so both are read-only here."""

from __future__ import annotations

from django.contrib import admin

from .models import AccessRequest, DataPackage, DataPackageFile, DataPackageVersion, DownloadRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class FileInline(admin.TabularInline):
    model = DataPackageFile
    extra = 0
    fields = ("path", "role", "sha256", "size")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DataPackage)
class DataPackageAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "host_team", "access", "created_at")
    list_filter = ("access",)
    search_fields = ("slug", "title", "host_team__name")
    raw_id_fields = ("host_team", "created_by")
    readonly_fields = ("slug", "host_team", "created_by", "created_at")


@admin.register(DataPackageVersion)
class DataPackageVersionAdmin(ReadOnlyAdmin):
    list_display = ("package", "number", "created_by", "created_at")
    search_fields = ("package__slug",)
    inlines = [FileInline]


@admin.register(DataPackageFile)
class DataPackageFileAdmin(ReadOnlyAdmin):
    list_display = ("version", "path", "role", "sha256", "size")
    list_filter = ("role",)
    search_fields = ("version__package__slug", "path", "sha256")


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = ("package", "user", "status", "created_at", "decided_by", "decided_at")
    list_filter = ("status",)
    search_fields = ("package__slug", "user__username", "user__email")


@admin.register(DownloadRecord)
class DownloadRecordAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "file", "via", "client_address")
    list_filter = ("via",)
    search_fields = ("file__version__package__slug", "file__path", "user__username", "client_address")
