from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "assay.server.web"
    label = "web"
