from django.contrib import admin

from .models import LeaderboardEntry


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(admin.ModelAdmin):
    list_display = ("id", "phase_split", "participant_team", "submission", "is_disabled", "created_at")
    list_filter = ("is_disabled",)
    search_fields = ("participant_team__name",)
