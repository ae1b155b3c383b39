"""The request id of the request being served, kept in a context variable so every log line written while
it runs can name it (:mod:`.logs`), and the rule for an incoming ``X-Request-ID``.

No Django import here: the log formatter reads this module while Django's logging is being configured.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

#: A well-formed incoming id: 1 to 64 letters, digits, dots, dashes or underscores (a UUID, a proxy's hex id).
#: Anything else (empty, too long, spaces, control characters, quotes) is replaced by a fresh id, so a header
#: can neither forge log structure nor overflow ``Submission.request_id``.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_request_id: ContextVar[str] = ContextVar("assay_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(incoming: str | None) -> str:
    """The incoming ``X-Request-ID`` if it is well-formed, else a fresh one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str:
    """The id of the request this code runs for, or "" outside a request (a worker thread, a command)."""
    return _request_id.get()


def bind_request_id(request_id: str) -> Token:
    return _request_id.set(request_id)


def forget_request_id(*args, **kwargs) -> None:
    """The request is over (``request_started``/``request_finished`` receiver): later lines of this thread
    (a server's next request, before its own id is bound) must not name it."""
    _request_id.set("")
