"""Submissions: a participant team's file (or image) for a phase, its evaluation state and outputs.

The row is also the queue entry: status, lease owner, lease expiry and attempt live here, so no
broker is needed and nothing is lost when a process dies (the rules are the evaluation engine's).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Submission(models.Model):
    class Status(models.TextChoices):
        SUBMITTING = "submitting", "Uploading"
        SUBMITTED = "submitted", "Submitted"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PARTIALLY_EVALUATED = "partially_evaluated", "Partially evaluated"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        RESUMING = "resuming", "Resuming"
        ARCHIVED = "archived", "Archived"

    IN_PROGRESS = (Status.SUBMITTING, Status.SUBMITTED, Status.QUEUED, Status.RUNNING, Status.RESUMING)

    phase = models.ForeignKey("challenges.ChallengePhase", on_delete=models.PROTECT, related_name="submissions")
    participant_team = models.ForeignKey("teams.ParticipantTeam", on_delete=models.PROTECT, related_name="submissions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    submission_number = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED, db_index=True)

    input_file = models.FileField(upload_to="submissions/", max_length=500, blank=True)
    input_file_name = models.CharField(max_length=255, blank=True)
    input_file_sha256 = models.CharField(max_length=64, blank=True)
    input_file_size = models.BigIntegerField(default=0)
    image_digest = models.CharField(max_length=100, blank=True, help_text="Container submissions.")

    method_name = models.CharField(max_length=1000, blank=True)
    method_description = models.TextField(blank=True)
    project_url = models.URLField(max_length=1000, blank=True)
    publication_url = models.URLField(max_length=1000, blank=True)
    submission_metadata = models.JSONField(null=True, blank=True, help_text="Values of the phase's meta attributes.")

    is_public = models.BooleanField(default=False)
    when_made_public = models.DateTimeField(null=True, blank=True)
    is_flagged = models.BooleanField(default=False)
    is_baseline = models.BooleanField(default=False)
    is_verified_by_host = models.BooleanField(default=False)
    ignore_submission = models.BooleanField(default=False, help_text="Hidden by its owner (soft delete).")

    output = models.JSONField(null=True, blank=True)
    stdout_file = models.FileField(upload_to="submission_logs/", max_length=500, blank=True)
    stderr_file = models.FileField(upload_to="submission_logs/", max_length=500, blank=True)
    submission_result_file = models.FileField(upload_to="submission_results/", max_length=500, blank=True)
    submission_metadata_file = models.FileField(upload_to="submission_results/", max_length=500, blank=True)
    failure_reason = models.TextField(blank=True)
    # the phase's retention policy removed the input file and logs (results and leaderboard entries stay)
    files_removed_at = models.DateTimeField(null=True, blank=True)
    files_removed_policy = models.CharField(max_length=20, blank=True, help_text="The policy that removed them.")

    # queue state
    queue_name = models.CharField(max_length=100, default="default")
    attempt = models.PositiveIntegerField(default=0, help_text="Claims so far; a result must name the current one.")
    expired_leases = models.PositiveIntegerField(default=0, help_text="Claims lost without a result.")
    lease_owner = models.CharField(max_length=100, blank=True)
    leased_by = models.ForeignKey(
        "WorkerToken",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The worker token whose worker holds the current lease: only it may read the job's files.",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    job_name = models.CharField(max_length=200, blank=True)
    # what the current evaluation was handed at its claim (services.scored_against); null: not recorded
    scored_annotation_sha256 = models.CharField(  # noqa: DJ001 null (not recorded) differs from "" (no file)
        max_length=64,
        null=True,
        blank=True,
        help_text="The annotation file's SHA-256 its worker was given ('' none); null: claimed before it was kept.",
    )
    scored_package_version = models.ForeignKey(
        "data_packages.DataPackageVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The data package version the phase pinned when its worker was handed the job.",
    )
    request_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The id of the request that submitted it: every log line about it names it.",
    )

    submitted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    rerun_resumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            # a team's submissions to a phase in the lists' order (newest first, then id), and every submit's counts
            # (submit.check_counts: rows, in progress, highest number; near a limit the dated ones) from the index
            # alone, no table row per submission: id (the counts name it; PostgreSQL's entries hold no id), status
            # and number are in it
            models.Index(
                fields=["phase", "participant_team", "submitted_at", "id", "status", "submission_number"],
                name="sub_team_counts",
            ),
            models.Index(fields=["queue_name", "status", "submitted_at"], name="sub_queue"),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.status})"

    @property
    def execution_time(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None


class SubmissionAttempt(models.Model):
    """An earlier evaluation of a submission, kept when a host re-evaluates it (issue 17, as EvalAI does):
    the submission row holds the current evaluation; these rows hold the ones it replaced, oldest first.

    Its files (logs, result and metadata documents) stay referenced here, so a host auditing a re-run
    still has the earlier evidence, a backup counts them, and retention removes its logs with the
    submission's own (``submissions.services.retention``)."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 is the first evaluation.")
    status = models.CharField(max_length=20, choices=Submission.Status.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True, help_text="The result as the submission held it.")
    failure_reason = models.TextField(blank=True)
    stdout_file = models.FileField(upload_to="submission_logs/", max_length=500, blank=True)
    stderr_file = models.FileField(upload_to="submission_logs/", max_length=500, blank=True)
    submission_result_file = models.FileField(upload_to="submission_results/", max_length=500, blank=True)
    submission_metadata_file = models.FileField(upload_to="submission_results/", max_length=500, blank=True)
    rerun_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rerun_at = models.DateTimeField(help_text="When the next evaluation was asked for.")
    scored_annotation_sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 as the submission's
    scored_package_version = models.ForeignKey(
        "data_packages.DataPackageVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    worker = models.ForeignKey(
        "WorkerToken",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The worker token whose worker ran it (the submission's leased_by then); null: not run or unknown.",
    )

    class Meta:
        ordering = ["submission_id", "number"]
        constraints = [models.UniqueConstraint(fields=["submission", "number"], name="unique_submission_attempt")]

    def __str__(self) -> str:
        return f"attempt {self.number} of submission {self.submission_id} ({self.status})"

    @property
    def execution_time(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None


class WorkerToken(models.Model):
    """A credential for one queue. Only its SHA-256 is stored; the token is shown once, at creation.

    Admins create tokens for the platform queue (``default``); a remote-evaluation challenge's hosts
    create tokens for that challenge's queue, so a host's worker sees that challenge's jobs only.
    """

    name = models.CharField(max_length=100)
    queue_name = models.CharField(max_length=100, db_index=True)
    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, null=True, blank=True, related_name="worker_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, queue {self.queue_name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SubmissionCases(models.Model):
    """The per-case rows an evaluation returned (``output["cases"]``), kept apart from the output.

    They can be large and they are private: hosts and the challenge's auditors read them, participants
    never do (a row carries the reference label). Stored once as gzip'd JSON lines in the file storage,
    so metrics can be recomputed and re-sliced without running the participant's model again.
    """

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="cases")
    file = models.FileField(upload_to="submission_cases/", max_length=500)
    sha256 = models.CharField(max_length=64, help_text="Of the stored (gzip'd) file.")
    count = models.PositiveIntegerField()
    columns = models.JSONField(default=list, help_text="Every key that appears in a row, in first-seen order.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "submission cases"

    def __str__(self) -> str:
        return f"{self.count} cases of submission {self.submission_id}"
