from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "assay.server.observability"
    label = "observability"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from .context import forget_request_id
        from .receivers import connect

        connect()  # after leaderboards and audits (INSTALLED_APPS order): a result's lines follow its entries
        request_started.connect(forget_request_id, dispatch_uid="observability-request-started")
        request_finished.connect(forget_request_id, dispatch_uid="observability-request-finished")
