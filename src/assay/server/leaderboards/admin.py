from django.contrib import admin, messages

from .models import LeaderboardEntry, Standing, StandingsState
from .services.standings import rebuild


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(admin.ModelAdmin):
    list_display = ("id", "phase_split", "participant_team", "submission", "is_disabled", "created_at")
    list_filter = ("is_disabled",)
    search_fields = ("participant_team__name",)


@admin.register(Standing)
class StandingAdmin(admin.ModelAdmin):
    """Read-only: standings are derived from the entries by the services, never edited by hand."""

    list_display = ("phase_split", "label", "audience", "team", "entry", "is_baseline", "sort_key", "submitted_at")
    list_filter = ("audience", "is_baseline")
    search_fields = ("team__name",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StandingsState)
class StandingsStateAdmin(admin.ModelAdmin):
    list_display = ("phase_split", "rebuilt_at", "signature")
    readonly_fields = ("phase_split", "rebuilt_at", "signature")
    actions = ["rebuild_standings"]

    @admin.action(description="Rebuild the standings from the entries")
    def rebuild_standings(self, request, queryset) -> None:
        """After editing submissions or entries in this admin (which bypasses the services)."""
        for state in queryset:
            rows = rebuild(state.phase_split_id)
            self.message_user(request, f"{state.phase_split}: {rows} standings", messages.SUCCESS)
