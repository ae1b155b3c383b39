"""Leaderboard entries: one submission's numbers for one phase-split."""

from __future__ import annotations

from django.db import models


class LeaderboardEntry(models.Model):
    """``result`` is ``{label: number}``; ``error`` is ``{"error_<label>": number}`` (error bars)."""

    phase_split = models.ForeignKey("challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="entries")
    submission = models.ForeignKey(
        "submissions.Submission", on_delete=models.CASCADE, related_name="leaderboard_entries"
    )
    participant_team = models.ForeignKey(
        "teams.ParticipantTeam", on_delete=models.CASCADE, related_name="leaderboard_entries"
    )
    result = models.JSONField()
    error = models.JSONField(null=True, blank=True)
    is_disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phase_split", "participant_team"], name="entry_split_team")]

    def __str__(self) -> str:
        return f"entry {self.pk} of submission {self.submission_id}"
