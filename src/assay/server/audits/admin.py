"""The audits models in Django's admin, for operators: the trail is read-only (its rows are chained by hash;
an edit there would break every later link), and so are the hashes and decisions the services record."""

from __future__ import annotations

from django.contrib import admin

from .models import AnswerSet, AuditSummary, Questionnaire, Release, Review, TrailRecord


@admin.register(AuditSummary)
class AuditSummaryAdmin(admin.ModelAdmin):
    list_display = ("submission", "computed_at")
    readonly_fields = ("settings_sha256", "cases_sha256", "computed_at")
    raw_id_fields = ("submission",)


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ("challenge", "version", "created_at")
    readonly_fields = ("sha256", "created_at")
    search_fields = ("challenge__title", "version")


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    fields = ("round", "reviewer", "decision", "comment", "decided_at")
    readonly_fields = fields
    can_delete = False


@admin.register(AnswerSet)
class AnswerSetAdmin(admin.ModelAdmin):
    list_display = ("submission", "team", "state", "second_review_required", "updated_at", "submitted_at")
    list_filter = ("state", "second_review_required")
    search_fields = ("team__name",)
    readonly_fields = ("created_at", "updated_at", "submitted_at", "updated_by")
    raw_id_fields = ("submission", "questionnaire", "team")
    inlines = [ReviewInline]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("answer_set", "round", "reviewer", "decision", "decided_at")
    list_filter = ("decision", "round")
    readonly_fields = ("created_at", "decided_at")
    raw_id_fields = ("answer_set", "reviewer")


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Never deleted: a retraction keeps the row and its reason."""

    list_display = ("submission", "state", "released_by", "released_at", "retracted_at")
    list_filter = ("state",)
    readonly_fields = ("released_by", "released_at", "retracted_by", "retracted_at", "manifest")
    raw_id_fields = ("submission",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrailRecord)
class TrailRecordAdmin(admin.ModelAdmin):
    """Read-only: append-only by design, and ``assay audit verify`` would name any edited record."""

    list_display = ("submission", "seq", "kind", "actor", "at", "short_hash")
    list_filter = ("kind",)
    search_fields = ("actor", "hash")
    ordering = ("submission_id", "seq")

    @admin.display(description="hash")
    def short_hash(self, row: TrailRecord) -> str:
        return row.hash[:12]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TrailRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
