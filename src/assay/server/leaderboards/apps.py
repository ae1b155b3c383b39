from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "assay.server.leaderboards"
    label = "leaderboards"
