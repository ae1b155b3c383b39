from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "assay.server.notifications"
    label = "notifications"

    def ready(self) -> None:
        from assay.server.challenges import signals as challenges
        from assay.server.leaderboards import signals as leaderboards
        from assay.server.submissions import signals as submissions

        # the task handlers register on import
        from .services import board_events, delivery, events, listeners, mail  # noqa: F401

        # lower apps announce; each receiver only enqueues one task, in the sender's transaction
        submissions.evaluated.connect(events.on_evaluated, dispatch_uid="assay-notifications-evaluated")
        challenges.participation_approved.connect(
            events.on_participation_approved, dispatch_uid="assay-notifications-approved"
        )
        leaderboards.standings_changed.connect(
            board_events.on_standings_changed, dispatch_uid="assay-notifications-standings"
        )
        listeners.connect()  # the rows that say who listens empty its per-process cache
