"""Models: a team's model registered once, its immutable versions, and the submissions made from them.

A version's file is stored once (content-addressed, as submissions' are) and every submission made from
it names the same stored file: nothing is uploaded or copied again. The card's intended-use fields carry
the audit questionnaire's question ids (``fg-ai4h-v1``) so an audit can be prefilled from them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from assay.server.immutable import refuse_changes


class Model(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Container image"
        CODE_BUNDLE = "code_bundle", "Code bundle"

    team = models.ForeignKey("teams.ParticipantTeam", on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True, help_text="Readable by every signed-in user since.")

    # the model card; the first three are the audit questionnaire's question ids
    summary = models.TextField(blank=True, help_text="What the model is, in a few lines.")
    intended_use = models.TextField(blank=True, help_text="Questionnaire: intended_use.")
    output_significance = models.CharField(max_length=100, blank=True, help_text="Questionnaire: output_significance.")
    data_sources = models.TextField(blank=True, help_text="Training data summary. Questionnaire: data_sources.")
    licence = models.CharField(max_length=200, blank=True, help_text="Its name (e.g. Apache-2.0).")
    contact = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_model_name_per_team")]

    def __str__(self) -> str:
        return f"model {self.name} ({self.kind})"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class ModelVersion(models.Model):
    """One immutable version: its file's sha256 (and an image's digest) never change once stored."""

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, … in order of registration.")
    label = models.CharField(max_length=100, blank=True, help_text="The team's own name for it (e.g. 1.2.0).")
    notes = models.TextField(blank=True)
    file = models.FileField(upload_to="models/", max_length=500)
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    file_size = models.BigIntegerField()
    image_digest = models.CharField(max_length=100, blank=True, help_text="An image's config digest.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="unique_model_version_number")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number}"

    IMMUTABLE = ("model_id", "number", "file", "file_name", "file_sha256", "file_size", "image_digest")

    def save(self, *args, **kwargs) -> None:
        """Refuse to change what identifies a stored version: a new file is a new version."""
        refuse_changes(self, self.IMMUTABLE, f"model version {self.pk} is immutable: register a new version instead")
        super().save(*args, **kwargs)


class ModelSubmission(models.Model):
    """A submission made from a model version (the submission holds the results; this says where it came from)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="submissions")
    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="model_source")

    def __str__(self) -> str:
        return f"{self.version} → submission {self.submission_id}"
