from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Health-AI audits: per-phase summaries of per-case results, questionnaires, reviews, release, trail."""

    name = "assay.server.audits"
    label = "audits"

    def ready(self) -> None:
        from assay.server.challenges import signals as challenge_signals

        from .services import questionnaires

        # the questionnaire a bundle brings is stored per version (a changed published version refused)
        challenge_signals.bundle_imported.connect(
            questionnaires.on_bundle_imported, dispatch_uid="audits.questionnaires.on_bundle_imported"
        )
