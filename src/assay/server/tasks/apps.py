from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "assay.server.tasks"
    label = "tasks"
    verbose_name = "Background tasks"
