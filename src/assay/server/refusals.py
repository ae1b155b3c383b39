"""The one refusal every server app raises: what the rules refuse, said once, rendered by each face.

Plain Python (no Django, no app imports) so that every layer may import it. A service raises a
:class:`Refusal` (or an app's subclass, kept only so callers can catch one app's refusals); the faces
render it: /api/v1 and EvalAI's paths in :mod:`assay.server.api.errors`, the web in
:mod:`assay.server.web.views.errors`.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """``code``: stable, for programs; ``message``: for people; ``status``: the HTTP status every face answers
    with; ``problems``: every reason found, when there is more than the one the message states (strings, or
    dicts with file and line for a bundle)."""

    status_default = 400

    def __init__(self, code: str, message: str, status: int | None = None, problems: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = self.status_default if status is None else status
        self.problems = list(problems or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.status})"


STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def for_status(status: int, message: str) -> Refusal:
    """The refusal behind a bare HTTP status (Django's own 404/405/413/500 answers)."""
    code = STATUS_CODES.get(status, "server_error" if status >= 500 else "error")
    return Refusal(code, message, status)
