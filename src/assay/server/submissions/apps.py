from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "assay.server.submissions"
    label = "submissions"
