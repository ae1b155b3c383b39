"""The challenge domain: challenge, phases, dataset splits, leaderboards, phase-splits, participation.

Rows created from a bundle keep the bundle's ``config_id`` so that re-importing a changed bundle
finds and updates them instead of duplicating them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from assay.bundle.environments import DEFAULT_ENVIRONMENT
from assay.bundle.model import DEFAULT_FILE_TYPES, RETENTION_POLICIES


class Challenge(models.Model):
    class Domain(models.TextChoices):
        CV = "CV", "Computer vision"
        NLP = "NLP", "Natural language processing"
        RL = "RL", "Reinforcement learning"
        MM = "MM", "Multimodal"
        AUD = "AUD", "Audio"
        TAB = "TAB", "Tabular"

    class UsageType(models.TextChoices):
        PAID = "paid", "Paid"
        INTERNAL = "internal", "Internal"

    slug = models.SlugField(max_length=140, unique=True, blank=True)
    title = models.CharField(max_length=100)
    short_description = models.TextField(blank=True)
    description = models.TextField(blank=True, help_text="HTML, stored inline from the bundle.")
    evaluation_details = models.TextField(blank=True)
    terms_and_conditions = models.TextField(blank=True)
    submission_guidelines = models.TextField(blank=True)
    image = models.FileField(upload_to="logos/", max_length=500, blank=True)
    evaluation_script = models.FileField(upload_to="evaluation_scripts/", max_length=500, blank=True)
    evaluation_script_sha256 = models.CharField(max_length=64, blank=True)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()

    host_team = models.ForeignKey("teams.HostTeam", on_delete=models.PROTECT, related_name="challenges")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    # publication and governance (admin-only fields are not settable from a bundle)
    published = models.BooleanField(default=False)
    approved_by_admin = models.BooleanField(default=False)
    is_approval_requested = models.BooleanField(default=False)
    is_disabled = models.BooleanField(default=False)
    is_submission_paused = models.BooleanField(default=False)
    featured = models.BooleanField(default=False)

    # kind of challenge
    remote_evaluation = models.BooleanField(default=False)
    is_docker_based = models.BooleanField(default=False)
    is_static_dataset_code_upload = models.BooleanField(default=False)
    submission_time_limit = models.PositiveIntegerField(default=86400, help_text="Seconds per evaluation run.")
    max_docker_image_size = models.BigIntegerField(default=42949672960)
    max_concurrent_submission_evaluation = models.PositiveIntegerField(default=100000)
    evaluation_limits = models.JSONField(
        default=dict, blank=True, help_text="Assay: memory_mb, cpu_seconds, max_processes, max_output_kb."
    )
    evaluation_environment = models.CharField(
        max_length=40,
        default=DEFAULT_ENVIRONMENT,
        help_text="Assay: the Python packages the evaluation script runs with (assay.bundle.environments).",
    )

    # presentation
    tags = models.JSONField(default=list, blank=True)
    domain = models.CharField(max_length=5, choices=Domain.choices, blank=True)
    leaderboard_description = models.TextField(blank=True)
    anonymous_leaderboard = models.BooleanField(default=False)
    enable_forum = models.BooleanField(default=True)
    forum_url = models.URLField(max_length=500, blank=True)
    cli_version = models.CharField(max_length=50, blank=True)

    # who may take part
    is_registration_open = models.BooleanField(default=True)
    manual_participant_approval = models.BooleanField(default=False)
    require_complete_profile = models.BooleanField(default=False)
    max_team_members = models.PositiveIntegerField(null=True, blank=True)
    allowed_email_domains = models.JSONField(default=list, blank=True)
    blocked_email_domains = models.JSONField(default=list, blank=True)
    banned_email_ids = models.JSONField(default=list, blank=True)
    invite_only = models.BooleanField(
        default=False, help_text="Assay: only teams whose members were all invited by e-mail may register."
    )

    # what participants and hosts may do with submissions
    allow_resuming_submissions = models.BooleanField(default=False)
    allow_host_cancel_submissions = models.BooleanField(default=False)
    allow_cancel_running_submissions = models.BooleanField(default=False)
    allow_participants_resubmissions = models.BooleanField(default=False)

    # provenance
    github_repository = models.CharField(max_length=200, blank=True, db_index=True)
    github_branch = models.CharField(max_length=200, blank=True)
    challenge_usage_type = models.CharField(max_length=10, choices=UsageType.choices, default=UsageType.PAID)
    infrastructure = models.JSONField(default=dict, blank=True, help_text="EvalAI AWS keys, kept verbatim.")
    config_yaml = models.TextField(blank=True, help_text="The config as last imported.")
    bundle_sha256 = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_date", "id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        if not self.slug:
            # EvalAI's slug is <slug(title)>-<pk>; keep it so links people shared still read alike.
            self.slug = f"{slugify(self.title)[:120] or 'challenge'}-{self.pk}"
            super().save(update_fields=["slug"])

    @property
    def is_active(self) -> bool:
        return self.start_date <= timezone.now() <= self.end_date

    @property
    def has_prize(self) -> bool:
        return self.prizes.exists()

    @property
    def has_sponsors(self) -> bool:
        return self.sponsors.exists()


class ChallengePrize(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="prizes")
    rank = models.PositiveIntegerField()
    amount = models.CharField(max_length=30)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["rank"]
        constraints = [models.UniqueConstraint(fields=["challenge", "rank"], name="unique_prize_rank")]

    def __str__(self) -> str:
        return f"#{self.rank}: {self.amount}"


class ChallengeSponsor(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="sponsors")
    name = models.CharField(max_length=200)
    website = models.URLField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.name


class ChallengePhase(models.Model):
    RETENTION_CHOICES = [(p, p) for p in RETENTION_POLICIES]

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    config_id = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    codename = models.CharField(max_length=100)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    test_annotation = models.FileField(upload_to="annotations/", max_length=500, blank=True)
    test_annotation_sha256 = models.CharField(max_length=64, blank=True)
    test_annotation_size = models.BigIntegerField(default=0)
    annotations_uploaded_using_cli = models.BooleanField(default=False)

    leaderboard_public = models.BooleanField(default=False)
    is_public = models.BooleanField(default=False)
    is_submission_public = models.BooleanField(default=False)
    is_submission_paused = models.BooleanField(default=False)
    max_submissions_per_day = models.PositiveIntegerField(default=100000)
    max_submissions_per_month = models.PositiveIntegerField(default=100000)
    max_submissions = models.PositiveIntegerField(default=100000)
    max_concurrent_submissions_allowed = models.PositiveIntegerField(default=3)
    count_failed_submissions = models.BooleanField(default=False, help_text="Assay: failed ones use up limits.")
    chunked_evaluation = models.JSONField(
        null=True, blank=True, help_text="Assay: {format, chunk_count, min_bytes}; null = evaluate whole."
    )
    allowed_email_ids = models.JSONField(default=list, blank=True)
    allowed_submission_file_types = models.CharField(max_length=500, default=DEFAULT_FILE_TYPES)
    is_restricted_to_select_one_submission = models.BooleanField(default=False)
    is_partial_submission_evaluation_enabled = models.BooleanField(default=False)
    submission_meta_attributes = models.JSONField(null=True, blank=True)
    default_submission_meta_attributes = models.JSONField(null=True, blank=True)
    disable_logs = models.BooleanField(default=False)
    environment_image = models.CharField(
        max_length=500, blank=True, help_text="Environment kind: an image reference, or the bundle's tarball's name."
    )
    environment_image_file = models.FileField(
        upload_to="environments/", max_length=500, blank=True, help_text="Assay: a docker save tarball from the bundle."
    )
    environment_image_sha256 = models.CharField(max_length=64, blank=True)
    environment_image_size = models.BigIntegerField(default=0)
    test_inputs = models.FileField(
        upload_to="test_inputs/", max_length=500, blank=True, help_text="Assay: what static-dataset images read."
    )
    test_inputs_sha256 = models.CharField(max_length=64, blank=True)
    test_inputs_size = models.BigIntegerField(default=0)
    case_metadata = models.FileField(
        upload_to="case_metadata/",
        max_length=500,
        blank=True,
        help_text="Assay: hidden per-case attributes (CSV, case_id first) joined to per-case results; never sent out.",
    )
    case_metadata_sha256 = models.CharField(max_length=64, blank=True)
    audit = models.JSONField(
        null=True, blank=True, help_text="Assay: the phase's audit settings (bundle key audit); null = no audit."
    )
    data_package_version = models.ForeignKey(
        "data_packages.DataPackageVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="phases",
        help_text="Assay: the data package version the phase's annotations, test inputs and case metadata come "
        "from (bundle key data_package); the file fields name that version's stored files, never a copy.",
    )
    submission_artifact_retention_policy = models.CharField(
        max_length=20, choices=RETENTION_CHOICES, default="keep_forever"
    )

    class Meta:
        ordering = ["challenge_id", "config_id"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "config_id"], name="unique_phase_config_id"),
            models.UniqueConstraint(fields=["challenge", "codename"], name="unique_phase_codename"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge}: {self.name}"

    @property
    def is_active(self) -> bool:
        return self.start_date <= timezone.now() <= self.end_date


class ChallengeAuditor(models.Model):
    """A person who reviews a challenge's audits: not a participant of it, not necessarily a host."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="auditors")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audited_challenges")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge_id", "id"]
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="unique_challenge_auditor")]

    def __str__(self) -> str:
        return f"{self.user} audits {self.challenge}"


class DatasetSplit(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="dataset_splits")
    config_id = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    codename = models.CharField(max_length=100)

    class Meta:
        ordering = ["challenge_id", "config_id"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "config_id"], name="unique_split_config_id"),
            models.UniqueConstraint(fields=["challenge", "codename"], name="unique_split_codename"),
        ]

    def __str__(self) -> str:
        return self.name


class Leaderboard(models.Model):
    """A leaderboard schema: ``{"labels": [...], "default_order_by": ..., "metadata": {...}}``."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="leaderboards")
    config_id = models.PositiveIntegerField()
    schema = models.JSONField()

    class Meta:
        ordering = ["challenge_id", "config_id"]
        constraints = [models.UniqueConstraint(fields=["challenge", "config_id"], name="unique_leaderboard_config_id")]

    def __str__(self) -> str:
        return f"leaderboard {self.config_id} of {self.challenge}"

    @property
    def labels(self) -> list[str]:
        return list(self.schema.get("labels", []))


class ChallengePhaseSplit(models.Model):
    """A leaderboard shown for one dataset split of one phase, with its display rules."""

    class Visibility(models.IntegerChoices):
        HOST = 1, "Host only"
        OWNER_AND_HOST = 2, "Submitting team and host"
        PUBLIC = 3, "Public"

    phase = models.ForeignKey(ChallengePhase, on_delete=models.CASCADE, related_name="phase_splits")
    dataset_split = models.ForeignKey(DatasetSplit, on_delete=models.CASCADE, related_name="phase_splits")
    leaderboard = models.ForeignKey(Leaderboard, on_delete=models.CASCADE, related_name="phase_splits")
    visibility = models.PositiveSmallIntegerField(choices=Visibility.choices, default=Visibility.PUBLIC)
    leaderboard_decimal_precision = models.PositiveSmallIntegerField(default=2)
    is_leaderboard_order_descending = models.BooleanField(default=True)
    show_execution_time = models.BooleanField(default=False)
    show_leaderboard_by_latest_submission = models.BooleanField(default=False)
    show_scores_on_leaderboard = models.BooleanField(default=True)
    is_multi_metric_leaderboard = models.BooleanField(default=True)
    reveal_at = models.DateTimeField(
        null=True, blank=True, help_text="Assay: from this date on the leaderboard is public (visibility 3)."
    )

    class Meta:
        ordering = ["phase_id", "dataset_split_id", "leaderboard_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase", "dataset_split", "leaderboard"], name="unique_phase_split_leaderboard"
            )
        ]

    def __str__(self) -> str:
        return f"{self.phase.codename}/{self.dataset_split.codename}"


class Participation(models.Model):
    """A participant team registered in a challenge, with the host's approval where required."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        DISAPPROVED = "disapproved", "Disapproved"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="participations")
    team = models.ForeignKey("teams.ParticipantTeam", on_delete=models.CASCADE, related_name="participations")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.APPROVED)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    terms_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "team"], name="unique_participation")]

    def __str__(self) -> str:
        return f"{self.team} in {self.challenge}"


class ChallengeInvitation(models.Model):
    """Assay: an address a host invited to an invite-only challenge (EvalAI#3284: "not possible" there).

    The invitee proves the address by signing in with it verified; no token is needed.
    """

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="Stored lower-cased.")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["challenge", "email"], name="unique_challenge_invitation")]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.challenge}"
