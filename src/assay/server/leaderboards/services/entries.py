"""A submission's leaderboard entries: written when its results arrive, then its team's standings follow.

Called through :mod:`assay.server.submissions.signals` (connected in ``leaderboards/apps.py``), inside
the transaction that records the results, so a submission and its leaderboard rows never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.server.submissions.models import Submission

from ..models import LeaderboardEntry
from .standings import refresh_submission


def record_entries(sub: Submission, splits: Mapping[str, Any]) -> None:
    """Replace ``sub``'s entries by one per phase-split it has results for (only the board's labels kept)."""
    LeaderboardEntry.objects.filter(submission=sub, is_disabled=False).update(is_disabled=True)
    entries = []
    for ps in sub.phase.phase_splits.select_related("dataset_split", "leaderboard"):
        split = splits.get(ps.dataset_split.codename)
        if split is None:
            continue
        labels = set(ps.leaderboard.labels)
        entries.append(
            LeaderboardEntry(
                phase_split=ps,
                submission=sub,
                participant_team_id=sub.participant_team_id,
                result={k: v for k, v in split.metrics.items() if k in labels},
                error=split.errors,
            )
        )
    LeaderboardEntry.objects.bulk_create(entries)
    refresh_submission(sub)  # the team's standings, in this same transaction


def on_scored(sender, *, submission: Submission, splits: Mapping[str, Any], **kwargs) -> None:
    record_entries(submission, splits)


def on_changed(sender, *, submission: Submission, **kwargs) -> None:
    refresh_submission(submission)
