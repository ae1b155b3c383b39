from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "assay.server.submissions"
    label = "submissions"

    def ready(self) -> None:
        from django.conf import settings
        from django.core import checks
        from django.db.models.signals import post_save

        from assay.server.challenges.models import Challenge
        from assay.server.challenges.services.package_pins import stored_by_a_package
        from assay.server.storage_config import S3_BACKEND

        from .models import Submission
        from .services import retention  # (importing it registers its task handler)
        from .services.queue import announce_approved, announce_saved

        # a phase names its data package version's files themselves: retention never deletes a package's file
        if stored_by_a_package not in retention.KEEPERS:
            retention.KEEPERS.append(stored_by_a_package)
        post_save.connect(announce_saved, sender=Submission, dispatch_uid="assay-queue-wakeup")
        post_save.connect(announce_approved, sender=Challenge, dispatch_uid="assay-queue-approved")
        # the files every submission needs: with ASSAY_STORAGE_URL=s3://…, the bucket must be there at start-up
        if settings.STORAGES["default"]["BACKEND"] == S3_BACKEND:
            from assay.server.s3_storage import check_bucket

            checks.register(check_bucket, "storage")
