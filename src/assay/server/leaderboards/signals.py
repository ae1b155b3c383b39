"""What the leaderboards announce, for the apps above them (notifications) to follow.

Sent inside the transaction that changed the standings, as ``submissions.signals`` are: a receiver only
records what it must do later (a task row), and a change that rolls back announced nothing.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: phase_id, phase_split_ids (tuple of ints): a submission's standings were placed or recomputed on those
# phase-splits (a result, a hidden/unhidden/flagged/cancelled/re-run/published submission, a baseline), or a
# phase-split's standings were rebuilt. What a reader sees may or may not have changed: receivers compare.
standings_changed = Signal()
