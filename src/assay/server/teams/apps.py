from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "assay.server.teams"
    label = "teams"
