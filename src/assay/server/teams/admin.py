from django.contrib import admin

from .models import HostTeam, HostTeamMember, ParticipantTeam, ParticipantTeamMember, TeamInvitation


class HostTeamMemberInline(admin.TabularInline):
    model = HostTeamMember
    extra = 0
    autocomplete_fields = ("user",)


class ParticipantTeamMemberInline(admin.TabularInline):
    model = ParticipantTeamMember
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(HostTeam)
class HostTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)
    inlines = [HostTeamMemberInline]


@admin.register(ParticipantTeam)
class ParticipantTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)
    inlines = [ParticipantTeamMemberInline]


@admin.register(HostTeamMember)
class HostTeamMemberAdmin(admin.ModelAdmin):
    list_display = ("team", "user", "permission")
    list_filter = ("permission",)


@admin.register(ParticipantTeamMember)
class ParticipantTeamMemberAdmin(admin.ModelAdmin):
    list_display = ("team", "user", "status")
    list_filter = ("status",)


@admin.register(TeamInvitation)
class TeamInvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "participant_team", "host_team", "status", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("email", "participant_team__name", "host_team__name")
    readonly_fields = ("token_hash",)
