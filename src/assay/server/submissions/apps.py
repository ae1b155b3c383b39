from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "assay.server.submissions"
    label = "submissions"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from assay.server.challenges.models import Challenge

        from .models import Submission
        from .services.queue import announce_approved, announce_saved

        post_save.connect(announce_saved, sender=Submission, dispatch_uid="assay-queue-wakeup")
        post_save.connect(announce_approved, sender=Challenge, dispatch_uid="assay-queue-approved")
