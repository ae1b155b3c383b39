"""A submission's leaderboard entries: written when its results arrive, then its team's standings follow.

Called through :mod:`assay.server.submissions.signals` (connected in ``leaderboards/apps.py``), inside
the transaction that records the results, so a submission and its leaderboard rows never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connection

from assay.server.challenges.services.phase_rules import split_rules
from assay.server.prepared import insert, write
from assay.server.submissions.models import Submission

from ..models import LeaderboardEntry
from .standings import refresh_submission


def record_entries(sub: Submission, splits: Mapping[str, Any]) -> None:
    """Replace ``sub``'s entries by one per phase-split it has results for (only the board's labels kept).

    The phase's splits and labels come from :func:`split_rules` (cached), and both writes are SQL built once
    (:func:`_disable_entries`, :func:`assay.server.prepared.insert`): this runs on every result."""
    _disable_entries(sub.pk)
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
    insert(entries)
    refresh_submission(sub)  # the team's standings, in this same transaction


_DISABLE: dict[str, str] = {}


def _disable_entries(submission_id: int) -> None:
    """Disable the submission's live entries (an earlier evaluation's): the ORM's ``update()`` as SQL built once."""
    if connection.alias not in _DISABLE:
        qn, column = connection.ops.quote_name, (lambda name: qn(LeaderboardEntry._meta.get_field(name).column))
        _DISABLE[connection.alias] = (
            f"UPDATE {qn(LeaderboardEntry._meta.db_table)} SET {column('is_disabled')} = %s"
            f" WHERE {column('submission')} = %s AND {column('is_disabled')} = %s"
        )
    write(connection, _DISABLE[connection.alias], [True, submission_id, False])


def on_scored(sender, *, submission: Submission, splits: Mapping[str, Any], **kwargs) -> None:
    record_entries(submission, splits)


def on_changed(sender, *, submission: Submission, **kwargs) -> None:
    refresh_submission(submission)
