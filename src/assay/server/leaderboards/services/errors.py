"""The one error the leaderboard services raise; the API turns it into ``{"error": {code, message}}``."""

from __future__ import annotations


class LeaderboardError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
