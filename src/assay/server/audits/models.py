"""What an audit adds to a submission: its computed summary, questionnaire answers, reviews, the host's
release decision and an append-only evidence trail.

An audit hangs on a submission of a phase whose bundle has an ``audit`` key; the questionnaire is the
challenge's (bundle key ``questionnaire``). Answers belong to the submitting team; reviews to the
challenge's auditors (``challenges.ChallengeAuditor``); release to its hosts (the data owner).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditSummary(models.Model):
    """The audit figures of one submission (``assay.audit.summary``'s document), private until released."""

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="audit_summary")
    document = models.JSONField(help_text="Headline figures with CIs, subgroup tables, calibration, curves.")
    settings_sha256 = models.CharField(max_length=64, help_text="Of the audit settings it was computed with.")
    cases_sha256 = models.CharField(max_length=64, help_text="Of the stored per-case rows it was computed from.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "audit summaries"

    def __str__(self) -> str:
        return f"audit summary of submission {self.submission_id}"


class Questionnaire(models.Model):
    """One version of a challenge's questionnaire schema (``assay.bundle.questionnaire``), kept forever."""

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="questionnaires")
    version = models.CharField(max_length=50)
    schema = models.JSONField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge_id", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["challenge", "version"], name="unique_questionnaire_version")]

    def __str__(self) -> str:
        return f"questionnaire {self.version} of {self.challenge}"


class AnswerSet(models.Model):
    """A team's answers for one submission; editable in draft, immutable once submitted for review."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted for review"
        UNDER_REVIEW = "under_review", "Under review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="answers")
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="answer_sets")
    team = models.ForeignKey("teams.ParticipantTeam", on_delete=models.CASCADE, related_name="audit_answers")
    answers = models.JSONField(default=dict, help_text="{question id: value}")
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT, db_index=True)
    second_review_required = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"answers for submission {self.submission_id} ({self.state})"


class Review(models.Model):
    """One auditor's review of an answer set: per-question ratings and comments, and a decision."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    answer_set = models.ForeignKey(AnswerSet, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_reviews")
    round = models.PositiveSmallIntegerField(default=1, help_text="1: first reviewer; 2: the optional second.")
    ratings = models.JSONField(default=dict, help_text="{question id: {rating, comment}}")
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["answer_set_id", "round", "id"]
        constraints = [models.UniqueConstraint(fields=["answer_set", "round"], name="unique_review_round")]

    def __str__(self) -> str:
        return f"review {self.round} of {self.answer_set}"


class Release(models.Model):
    """The hosts' decision to publish a submission's audit results; a retraction keeps the row and a reason."""

    class State(models.TextChoices):
        RELEASED = "released", "Released"
        RETRACTED = "retracted", "Retracted"

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="release")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RELEASED)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    released_at = models.DateTimeField()
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    retracted_at = models.DateTimeField(null=True, blank=True)
    retraction_reason = models.TextField(blank=True)
    manifest = models.JSONField(
        null=True,
        blank=True,
        help_text="The reproducibility manifest as made (and signed) at release; every download hands it out "
        "unchanged. Null for releases made before it was kept: those are built on request.",
    )

    def __str__(self) -> str:
        return f"release of submission {self.submission_id} ({self.state})"


class TrailRecord(models.Model):
    """One event of a submission's evidence trail; ``hash`` covers this record and the previous one's hash.

    Append-only: services only ever create rows (``assay.evidence.chain`` computes the hashes), so editing
    or removing one breaks every later hash and ``assay audit verify`` says where.
    """

    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE, related_name="trail")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=30)
    actor = models.CharField(max_length=150, blank=True, help_text="Username, 'worker:<name>' or 'system'.")
    at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["submission_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["submission", "seq"], name="unique_trail_seq")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of submission {self.submission_id}"
