from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "assay.server.leaderboards"
    label = "leaderboards"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit, Leaderboard
        from assay.server.teams.models import HostTeamMember

        from .services.standings import forget_rules

        # everything rules_for() reads: the standings' cached rules are read again after a change
        for model in (Challenge, ChallengePhase, ChallengePhaseSplit, Leaderboard, HostTeamMember):
            for signal in (post_save, post_delete):
                signal.connect(forget_rules, sender=model, dispatch_uid=f"assay-standings-rules-{model.__name__}")
