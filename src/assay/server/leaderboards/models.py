"""Leaderboard entries (one submission's numbers for one phase-split) and the standings kept from them.

A page of a leaderboard must not rank every entry on every read (10⁶ entries take seconds), so
:class:`Standing` keeps, per phase-split, label and audience, each team's current best (or latest)
entry plus every baseline entry, with a numeric sort key. A page is then an index range scan.
The standings are maintained by :mod:`assay.server.leaderboards.services.standings`.
"""

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
    intervals = models.JSONField(
        default=dict, blank=True, help_text="Confidence intervals shown beside scores: {label: [low, high]}."
    )
    is_disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phase_split", "participant_team"], name="entry_split_team")]
        verbose_name_plural = "leaderboard entries"

    def __str__(self) -> str:
        return f"entry {self.pk} of submission {self.submission_id}"


class Standing(models.Model):
    """A row a leaderboard may show: a team's chosen entry, or a baseline entry, for one sort label.

    ``sort_key`` is the label's value with the direction applied (lower always ranks first; a missing
    value is +inf), ``tie_key`` the error bar (lower first, as EvalAI). ``PUBLIC`` rows are chosen among
    public submissions only (what participants see), ``ALL`` rows among every entry (what hosts may see).
    The audience is a number, not a boolean, so that databases seek the index on it.
    """

    class Audience(models.IntegerChoices):
        ALL = 0, "Every entry"
        PUBLIC = 1, "Public submissions"

    phase_split = models.ForeignKey("challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="+")
    label = models.TextField()
    audience = models.PositiveSmallIntegerField(choices=Audience.choices)
    team = models.ForeignKey("teams.ParticipantTeam", on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(LeaderboardEntry, on_delete=models.CASCADE, related_name="+")
    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE, related_name="+")
    is_baseline = models.BooleanField(default=False)
    sort_key = models.FloatField()
    tie_key = models.FloatField()
    submitted_at = models.DateTimeField()

    class Meta:
        indexes = [
            # the page order, then what counting needs, so a count reads the index alone
            models.Index(
                fields=[
                    "phase_split",
                    "label",
                    "audience",
                    "sort_key",
                    "tie_key",
                    "submitted_at",
                    "entry",
                    "is_baseline",
                    "team",
                ],
                name="standing_page",
            ),  # fmt: skip
            models.Index(fields=["phase_split", "team"], name="standing_team"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["phase_split", "label", "audience", "team"],
                condition=models.Q(is_baseline=False),
                name="standing_one_per_team",
            ),
            models.UniqueConstraint(
                fields=["phase_split", "label", "audience", "entry"], name="standing_one_per_entry"
            ),
        ]

    def __str__(self) -> str:
        return f"standing of team {self.team_id} on {self.phase_split_id}/{self.label}"


class StandingsState(models.Model):
    """What the standings of a phase-split were built for; a different signature means rebuild.

    The signature covers every setting that changes which entry is a team's (sort directions,
    best/latest, labels, host exclusion and its host list, partial evaluation), so a re-imported
    bundle or an admin edit can never leave stale standings behind.
    """

    phase_split = models.OneToOneField(
        "challenges.ChallengePhaseSplit", on_delete=models.CASCADE, related_name="standings_state"
    )
    signature = models.CharField(max_length=64, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"standings of phase-split {self.phase_split_id}"
