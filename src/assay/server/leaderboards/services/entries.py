"""A submission's leaderboard entries: written when its results arrive, then its team's standings follow.

Called through :mod:`assay.server.submissions.signals` (connected in ``leaderboards/apps.py``), inside
the transaction that records the results, so a submission and its leaderboard rows never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.server.challenges.services.phase_rules import split_rules
from assay.server.submissions.models import Submission

from ..models import LeaderboardEntry
from .standings import refresh_submission


def record_entries(sub: Submission, splits: Mapping[str, Any]) -> None:
    """Replace ``sub``'s entries by one per phase-split it has results for (only the board's labels kept).

    The phase's splits and labels come from :func:`split_rules` (cached): this runs on every result."""
    LeaderboardEntry.objects.filter(submission=sub, is_disabled=False).update(is_disabled=True)
    entries = []
    for rule in split_rules(sub.phase_id):
        split = splits.get(rule.codename)
        if split is None:
            continue
        entries.append(
            LeaderboardEntry(
                phase_split_id=rule.phase_split_id,
                submission=sub,
                participant_team_id=sub.participant_team_id,
                result={k: v for k, v in split.metrics.items() if k in rule.labels},
                error=split.errors,
                intervals={k: v for k, v in (getattr(split, "intervals", None) or {}).items() if k in rule.labels},
            )
        )
    LeaderboardEntry.objects.bulk_create(entries)
    refresh_submission(sub)  # the team's standings, in this same transaction


def on_scored(sender, *, submission: Submission, splits: Mapping[str, Any], **kwargs) -> None:
    record_entries(submission, splits)


def on_changed(sender, *, submission: Submission, **kwargs) -> None:
    refresh_submission(submission)
