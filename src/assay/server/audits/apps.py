from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Health-AI audits: per-phase summaries of per-case results, questionnaires, reviews, release, trail."""

    name = "assay.server.audits"
    label = "audits"

    def ready(self) -> None:
        from assay.server.challenges import signals as challenge_signals
        from assay.server.submissions import signals as submission_signals

        from .services import questionnaires, summaries

        # the questionnaire a bundle brings is stored per version (a changed published version refused)
        challenge_signals.bundle_imported.connect(
            questionnaires.on_bundle_imported, dispatch_uid="audits.questionnaires.on_bundle_imported"
        )
        # a result in an audited phase: its evaluation on the trail, then (a background task) its audit summary
        submission_signals.scored.connect(summaries.on_scored, dispatch_uid="audits.summaries.on_scored")
        from assay.server import tasks

        tasks.handler(summaries.SUMMARISE, lease_seconds=900)(summaries.summarise_task)

        # the evidence trail of audited phases: the file's arrival and a failed evaluation
        from django.db.models.signals import post_save

        from assay.server.submissions.models import Submission

        from .services import events

        post_save.connect(events.on_submission_saved, sender=Submission, dispatch_uid="audits.events.submitted")
        submission_signals.changed.connect(events.on_changed, dispatch_uid="audits.events.failed")
        # a configured signing key that cannot be read is refused at start-up
        from django.core import checks

        from .services import manifest

        checks.register(manifest.check_signing_key, checks.Tags.security)
