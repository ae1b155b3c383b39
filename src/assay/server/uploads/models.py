"""An upload in progress: the submission it will become, and the parts received so far."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Upload(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Receiving parts"
        COMPLETE = "complete", "Complete"
        ABORTED = "aborted", "Aborted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    phase = models.ForeignKey("challenges.ChallengePhase", on_delete=models.CASCADE, related_name="+")
    submission = models.OneToOneField(
        "submissions.Submission", on_delete=models.CASCADE, related_name="upload", null=True, blank=True
    )
    file_name = models.CharField(max_length=255)
    size = models.BigIntegerField(null=True, blank=True, help_text="Declared total size, if the client knows it.")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Declared checksum of the whole file.")
    chunk_size = models.PositiveIntegerField()
    part_count = models.PositiveIntegerField()
    parts = models.JSONField(default=dict, help_text="{part number: {size, sha256, md5}}")
    store_upload_id = models.CharField(
        max_length=1024,
        blank=True,
        help_text="The object store's multipart upload, when the client puts the parts straight into it.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.status})"

    @property
    def received_bytes(self) -> int:
        return sum(int(p["size"]) for p in self.parts.values())
