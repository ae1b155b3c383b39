from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "assay.server.leaderboards"
    label = "leaderboards"

    def ready(self) -> None:
        from assay.server.submissions import signals as submissions

        from .services.board_cache import connect as connect_board_cache
        from .services.entries import on_changed, on_scored

        # submissions (a layer below) announces; the leaderboards follow in the same transaction
        submissions.scored.connect(on_scored, dispatch_uid="assay-leaderboards-scored")
        submissions.changed.connect(on_changed, dispatch_uid="assay-leaderboards-changed")
        connect_board_cache()  # the writes that change cached leaderboard pages
