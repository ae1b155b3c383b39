"""The one error the leaderboard services raise (a :class:`~assay.server.refusals.Refusal`)."""

from __future__ import annotations

from assay.server.refusals import Refusal


class LeaderboardError(Refusal):
    """A leaderboard request the rules refuse (hidden, unknown column, bad page)."""
