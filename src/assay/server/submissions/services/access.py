"""Who may see a submission: its team's members, the challenge's hosts, and staff."""

from __future__ import annotations

from assay.server.challenges.services.roles import is_host

from ..models import Submission


def can_view(user, sub: Submission) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if is_host(user, sub.phase.challenge):
        return True
    return sub.participant_team.memberships.filter(user=user, status="active").exists()


def can_view_logs(user, sub: Submission) -> bool:
    """``disable_logs`` hides stdout/stderr from participants; hosts always see them."""
    if not can_view(user, sub):
        return False
    return not sub.phase.disable_logs or is_host(user, sub.phase.challenge)
