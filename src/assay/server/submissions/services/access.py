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
    """Hosts always see stdout/stderr; participants do unless the phase hides them.

    A phase hides them with ``disable_logs``, and always in a docker-based challenge: there the
    participant's own code reads the test inputs (or plays the host's environment), so anything it
    prints could carry hidden data out (Grand Challenge's rule). Participants still get the failure
    reason, which is written from the engine's facts only (exit code, time or memory limit).
    """
    if not can_view(user, sub):
        return False
    return logs_for_viewer(is_host(user, sub.phase.challenge), sub.phase)


def logs_for_viewer(host: bool, phase) -> bool:
    """For a reader who may see the submission (:func:`can_view`): hosts see its logs, its team as the phase
    says. The one place of the rule; :class:`~.result_access.ResultReader` calls it with the roles it remembers."""
    return host or participants_see_logs(phase)


def participants_see_logs(phase) -> bool:
    """The rule of :func:`can_view_logs` for a phase's participants (who may already see the submission)."""
    return not phase.disable_logs and not phase.challenge.is_docker_based
