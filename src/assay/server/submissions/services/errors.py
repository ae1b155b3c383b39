"""Refusals every submission service raises, with a stable code and an HTTP status for the APIs."""

from __future__ import annotations


class SubmissionError(Exception):
    """A request about a submission that the rules refuse. ``status`` mirrors EvalAI's HTTP codes."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class LeaseLost(SubmissionError):
    """The worker no longer holds this job (expired, re-claimed, cancelled or already completed)."""

    def __init__(self, message: str) -> None:
        super().__init__("lease_lost", message, 409)
