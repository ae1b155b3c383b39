"""Data packages: a host team's dataset as immutable, numbered versions of content-addressed files.

A package carries its data card and its access policy; a version's files each have a role, and the role
decides who may read them: ``inputs`` go to whoever the policy admits, ``labels`` and ``metadata`` (a
phase's hidden case attributes) never leave the owning host team (workers get labels through the phase
that pins the version, as they get a bundle's annotations). Phases pin a version, so a new version never
changes results already on a leaderboard.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from assay.server.immutable import refuse_changes


class DataPackage(models.Model):
    class Access(models.TextChoices):
        PUBLIC = "public", "Public: anyone may download the inputs"
        ON_REQUEST = "on_request", "On request: the data owner approves each user"
        HOSTS_ONLY = "hosts_only", "Hosts only: the owning host team"

    host_team = models.ForeignKey("teams.HostTeam", on_delete=models.PROTECT, related_name="data_packages")
    slug = models.SlugField(max_length=100, unique=True, help_text="How bundles name it (data_package.name).")
    title = models.CharField(max_length=200)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.ON_REQUEST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    # the data card
    summary = models.TextField(blank=True)
    source = models.TextField(blank=True, help_text="Where the data comes from (institutions, devices).")
    collection_period = models.CharField(max_length=200, blank=True)
    population = models.TextField(blank=True, help_text="Who is in it: demographics, inclusion and exclusion.")
    labelling = models.TextField(blank=True, help_text="How the labels were made: by whom, protocol, agreement.")
    licence = models.CharField(max_length=200, blank=True)
    limitations = models.TextField(blank=True, help_text="Known limitations and biases.")
    contact = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"data package {self.slug}"


class DataPackageVersion(models.Model):
    """One immutable version: its files never change once stored; a change is a new version."""

    package = models.ForeignKey(DataPackage, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, … in order of publication.")
    notes = models.TextField(blank=True, help_text="What changed since the previous version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["package", "-number"]
        constraints = [models.UniqueConstraint(fields=["package", "number"], name="unique_data_package_version")]

    def __str__(self) -> str:
        return f"{self.package.slug} v{self.number}"


class DataPackageFile(models.Model):
    class Role(models.TextChoices):
        INPUTS = "inputs", "Test inputs (participants may read them)"
        LABELS = "labels", "Labels / annotations (never shown to participants)"
        METADATA = "metadata", "Hidden case metadata (subgroups; never shown to participants)"

    version = models.ForeignKey(DataPackageVersion, on_delete=models.PROTECT, related_name="files")
    path = models.CharField(max_length=300, help_text="Its name inside the package, e.g. labels/test.json.")
    role = models.CharField(max_length=20, choices=Role.choices)
    file = models.FileField(upload_to="data-packages/", max_length=500)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()

    class Meta:
        ordering = ["version", "path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="unique_data_package_file_path")]

    def __str__(self) -> str:
        return f"{self.version} {self.path} ({self.role})"

    IMMUTABLE = ("version_id", "path", "role", "file", "sha256", "size")

    def save(self, *args, **kwargs) -> None:
        """Refuse to change a stored file's identity: a new file belongs in a new version."""
        refuse_changes(self, self.IMMUTABLE, f"data package file {self.pk} is immutable: publish a new version instead")
        super().save(*args, **kwargs)


class AccessRequest(models.Model):
    """A user's request to read an on-request package's inputs (all versions), decided by the data owner."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        REVOKED = "revoked", "Revoked"

    package = models.ForeignKey(DataPackage, on_delete=models.CASCADE, related_name="access_requests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField(blank=True, help_text="What the requester will use the data for.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["package", "user"], name="one_access_request_per_user")]

    def __str__(self) -> str:
        return f"{self.user} → {self.package.slug}: {self.status}"


class DownloadRecord(models.Model):
    """Every download of a package file, whoever made it (append-only: the access log)."""

    file = models.ForeignKey(DataPackageFile, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    client_address = models.CharField(max_length=64, blank=True)
    via = models.CharField(max_length=20, default="api", help_text="api, web or cli (from the request's face).")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.user} downloaded {self.file} at {self.at}"
