"""Refusals every submission service raises, with a stable code and an HTTP status for the APIs."""

from __future__ import annotations

from assay.server.refusals import Refusal


class SubmissionError(Refusal):
    """A request about a submission that the rules refuse. ``status`` mirrors EvalAI's HTTP codes."""


class LeaseLost(SubmissionError):
    """The worker no longer holds this job (expired, re-claimed, cancelled or already completed)."""

    def __init__(self, message: str) -> None:
        super().__init__("lease_lost", message, 409)
