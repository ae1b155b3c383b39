from django.apps import AppConfig


class ModelsZooConfig(AppConfig):
    """Models registered once by a team (an image or a code bundle, versioned) and submitted to many phases."""

    name = "assay.server.models_zoo"
    label = "models_zoo"
    verbose_name = "Models"

    def ready(self) -> None:
        from assay.server.submissions.services import retention

        from .services.registry import stored_by_a_version

        # a version's file is shared with the submissions made from it: retention must not delete it
        if stored_by_a_version not in retention.KEEPERS:
            retention.KEEPERS.append(stored_by_a_version)
