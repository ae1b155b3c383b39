from django.apps import AppConfig


class ModelsZooConfig(AppConfig):
    """Models registered once by a team (an image or a code bundle, versioned) and submitted to many phases."""

    name = "assay.server.models_zoo"
    label = "models_zoo"
    verbose_name = "Models"

    def ready(self) -> None:
        from assay.server.audits.services import prefill
        from assay.server.submissions.services import retention

        from .services.audit_answers import prefill_from_model
        from .services.registry import stored_by_a_version

        # a version's file is shared with the submissions made from it: retention must not delete it
        if stored_by_a_version not in retention.KEEPERS:
            retention.KEEPERS.append(stored_by_a_version)
        # a submission made from a model starts its audit answers from the model (audits cannot import us)
        if prefill_from_model not in prefill.PREFILLERS:
            prefill.PREFILLERS.append(prefill_from_model)
