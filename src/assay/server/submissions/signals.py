"""The moments the submissions app announces, for the leaderboards above it to follow.

leaderboards sits above submissions in the layer contract (``pyproject.toml``): a ranking is read from
submissions, never the other way round. Yet a leaderboard must change in the same transaction as the
submission that changes it. So submissions announces and leaderboards listens (``leaderboards/apps.py``
connects its receivers). :meth:`Signal.send` runs the receivers at once, in the sender's transaction,
and lets their exceptions through: a failed leaderboard write rolls the submission's change back too.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: submission, splits ({split codename: SplitResult with .metrics and .errors}): new results
# were recorded and replace the submission's earlier ones
scored = Signal()
# kwargs: submission: its status, marks or visibility changed (its team's other submissions may have too)
changed = Signal()
# kwargs: submission: a worker leased it for a new attempt (claim_next, or take of a waiting job); metrics and
# the submission's log lines follow (observability)
claimed = Signal()
# kwargs: submission, failure: an attempt's outcome was recorded; failure is None (a result) or why it failed:
# an evaluation error kind (assay.evaluation.contract.ErrorKind, as the worker reported it), "bad_output" (the
# server refused the result), "lost" (every lease ran out) or "unspecified" (an error reported without a kind)
evaluated = Signal()
