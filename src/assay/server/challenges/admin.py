from django.contrib import admin

from .models import (
    Challenge,
    ChallengeAuditor,
    ChallengeInvitation,
    ChallengePhase,
    ChallengePhaseSplit,
    ChallengePrize,
    ChallengeSponsor,
    DatasetSplit,
    Leaderboard,
    Participation,
)


class PrizeInline(admin.TabularInline):
    model = ChallengePrize
    extra = 0


class SponsorInline(admin.TabularInline):
    model = ChallengeSponsor
    extra = 0


class PhaseInline(admin.TabularInline):
    model = ChallengePhase
    extra = 0
    fields = ("config_id", "codename", "name", "start_date", "end_date", "is_public", "leaderboard_public")
    show_change_link = True


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ("title", "host_team", "start_date", "end_date", "published", "approved_by_admin")
    list_filter = ("published", "approved_by_admin", "remote_evaluation", "is_docker_based", "domain")
    search_fields = ("title", "slug", "host_team__name")
    readonly_fields = ("slug", "bundle_sha256", "evaluation_script_sha256", "created_at", "updated_at")
    inlines = [PhaseInline, PrizeInline, SponsorInline]
    actions = ["approve"]

    @admin.action(description="Approve selected challenges")
    def approve(self, request, queryset) -> None:
        """Saved one by one, not ``update()``: post_save wakes the workers for submissions that waited."""
        approved = []
        for challenge in queryset.filter(approved_by_admin=False):
            challenge.approved_by_admin = True
            challenge.save(update_fields=["approved_by_admin", "updated_at"])
            approved.append(challenge.title)
        if approved:
            self.message_user(request, f"Approved: {', '.join(approved)}. Published ones are listed now.")
        else:
            self.message_user(request, "The selected challenges were approved already.")


@admin.register(ChallengePhase)
class ChallengePhaseAdmin(admin.ModelAdmin):
    list_display = ("codename", "name", "challenge", "start_date", "end_date", "is_public")
    list_filter = ("is_public", "leaderboard_public", "is_submission_paused")
    search_fields = ("codename", "name", "challenge__title")
    readonly_fields = ("test_annotation_sha256", "test_annotation_size")


@admin.register(DatasetSplit)
class DatasetSplitAdmin(admin.ModelAdmin):
    list_display = ("codename", "name", "challenge")
    search_fields = ("codename", "name", "challenge__title")


@admin.register(Leaderboard)
class LeaderboardAdmin(admin.ModelAdmin):
    list_display = ("config_id", "challenge")
    search_fields = ("challenge__title",)


@admin.register(ChallengePhaseSplit)
class ChallengePhaseSplitAdmin(admin.ModelAdmin):
    list_display = ("phase", "dataset_split", "leaderboard", "visibility", "is_leaderboard_order_descending")
    list_filter = ("visibility", "show_leaderboard_by_latest_submission", "show_scores_on_leaderboard")


@admin.register(ChallengePrize)
class ChallengePrizeAdmin(admin.ModelAdmin):
    list_display = ("challenge", "rank", "amount")


@admin.register(ChallengeSponsor)
class ChallengeSponsorAdmin(admin.ModelAdmin):
    list_display = ("challenge", "name", "website")


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ("team", "challenge", "status", "terms_accepted_at")
    list_filter = ("status",)
    search_fields = ("team__name", "challenge__title")


@admin.register(ChallengeInvitation)
class ChallengeInvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "challenge", "invited_by", "created_at")
    search_fields = ("email", "challenge__title")


@admin.register(ChallengeAuditor)
class ChallengeAuditorAdmin(admin.ModelAdmin):
    list_display = ("user", "challenge", "added_by", "added_at")
    search_fields = ("user__username", "challenge__title")
    raw_id_fields = ("user", "added_by")
