"""What the leaderboards announce, for the apps above them (notifications) to follow.

Sent inside the transaction that changed the standings, as ``submissions.signals`` are: a receiver only
records what it must do later (a task row), and a change that rolls back announced nothing.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: phase_id, phase_split_ids (tuple of ints): on those phase-splits a submission's placing wrote a row of
# the public audience, or its team's rows were recomputed (a result, a hidden/unhidden/flagged/cancelled/re-run/
# published submission, a baseline), or the standings were rebuilt. A placing that wrote no public row (a team's
# worse result, a private submission) is not announced. What a reader sees may still be as it was: receivers compare.
standings_changed = Signal()
