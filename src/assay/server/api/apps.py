from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "assay.server.api"
    label = "api"
