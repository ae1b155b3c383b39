"""Who may see a submission and its logs, for a face that asks about one submission once.

The rule is written once, in :class:`~.result_access.ResultReader` (its team's active members, the challenge's
hosts, staff; logs as the phase says), because faces that read many submissions keep one reader and its
remembered roles; these are that rule asked through a reader of one question.
"""

from __future__ import annotations

from ..models import Submission
from .result_access import ResultReader


def can_view(user, sub: Submission) -> bool:
    return ResultReader(user).may_view(sub)


def can_view_logs(user, sub: Submission) -> bool:
    """Hosts always see stdout/stderr; participants do unless the phase hides them
    (:func:`~.result_access.participants_see_logs`)."""
    return ResultReader(user).may_read_logs(sub)
