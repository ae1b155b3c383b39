from django.apps import AppConfig


class ChallengesConfig(AppConfig):
    name = "assay.server.challenges"
    label = "challenges"
