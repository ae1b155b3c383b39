"""Telling a challenge's hosts that its evaluations keep failing.

The rule: the last ``ASSAY_NOTIFY_FAILURE_STREAK`` (5) evaluations of the challenge that ended, all within
the last ``ASSAY_NOTIFY_FAILURE_WINDOW_MINUTES`` (60), all failed. Then each host gets one e-mail, and no
other for the same challenge until a window has passed since (one per window, not one per failure). A
single bad submission is the team's problem; five in a row in an hour usually is the script's (a missing
annotation file, a changed environment).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from assay.server.challenges.models import Challenge
from assay.server.submissions.models import Submission
from assay.server.teams.models import HostTeamMember

from ..models import FailureAlert
from .links import absolute
from .mail import queue_email


def streak() -> int:
    return max(1, int(getattr(settings, "NOTIFY_FAILURE_STREAK", 5)))


def window() -> dt.timedelta:
    return dt.timedelta(minutes=float(getattr(settings, "NOTIFY_FAILURE_WINDOW_MINUTES", 60)))


def keeps_failing(challenge: Challenge, now: dt.datetime) -> bool:
    n = streak()
    recent = list(
        challenge_submissions(challenge)
        .filter(completed_at__isnull=False, completed_at__gte=now - window())
        .order_by("-completed_at", "-id")
        .values_list("status", flat=True)[:n]
    )
    return len(recent) == n and all(status == "failed" for status in recent)


def challenge_submissions(challenge: Challenge):
    return Submission.objects.filter(phase__challenge=challenge)


def check(challenge: Challenge, now: dt.datetime | None = None) -> bool:
    """E-mail the hosts if the challenge keeps failing and they were not told within the window; whether
    they were told now. Runs inside the caller's transaction (the alert row and the e-mails commit together)."""
    now = now or timezone.now()
    if not keeps_failing(challenge, now):
        return False
    last = FailureAlert.objects.select_for_update().filter(challenge=challenge).first()
    if last is not None and last.sent_at > now - window():
        return False
    FailureAlert.objects.update_or_create(challenge=challenge, defaults={"sent_at": now})
    minutes = int(window().total_seconds() // 60)
    link = absolute("web:host-errors", challenge.pk)
    members = HostTeamMember.objects.filter(team_id=challenge.host_team_id, user__is_active=True).select_related("user")
    for member in members:
        if not member.user.email:
            continue
        body = "\n".join(
            [
                f"Hello {member.user.get_username()},",
                "",
                f"The last {streak()} evaluations of {challenge.title} all failed, within {minutes} minutes.",
                "The evaluation script or its files may be at fault (a missing annotation file, a changed",
                "environment). The failures and their logs:",
                "",
                f"  {link}",
                "",
                f"You will not get this e-mail again for {challenge.title} within the next {minutes} minutes.",
            ]
        )
        queue_email(member.user, f"[Assay] {challenge.title}: evaluations keep failing", body + "\n")
    return True
