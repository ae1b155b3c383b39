"""Who listens, as the signal receivers ask it on every result: kept per process, so asking costs no query.

Two facts decide whether a change is worth a task row: which events each challenge's active webhooks want,
and which teams no one of would get a submission e-mail (every active member turned them off). Both are read
at once, in two queries, and kept for ``ASSAY_NOTIFY_LISTENERS_CACHE_SECONDS`` (5; 0: off, read each time). A
save or delete of a webhook, a notification setting or a team membership empties the cache at once in the
process that makes it; other processes see it within that bound (``row_cache`` says why that is the rule):
in that window a team that turned e-mails back on, or a webhook just added, may miss a ``submission.finished``;
a ``leaderboard.changed`` is only late (the next event compares with the last one sent).

The silent teams are a conservative guess: a member whose user is inactive or has no address still counts as
listening, so a team is skipped only when it surely has no reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.signals import post_delete, post_save

from assay.server.row_cache import RowCache
from assay.server.teams.models import ParticipantTeamMember, active_membership

from ..models import NotificationSettings, Webhook
from .preferences import wanting_submission_emails


@dataclass(frozen=True)
class Listeners:
    hooks: dict[int, frozenset[str]]  # challenge id → the events its active webhooks want (absent: none)
    silent_teams: frozenset[int]  # teams with no member who wants submission e-mails

    def wants(self, challenge_id: int, event: str) -> bool:
        return event in self.hooks.get(challenge_id, ())


def _seconds() -> float:
    return float(getattr(settings, "NOTIFY_LISTENERS_CACHE_SECONDS", 5))


_cache: RowCache[Listeners] = RowCache(_seconds)


def current() -> Listeners:
    """Who listens now (as of at most the cache's seconds ago in another process)."""
    found = _cache.get(None)
    if found is None:
        stamp = _cache.stamp()
        found = _read()
        _cache.put(None, found, stamp)
    return found


def _read() -> Listeners:
    hooks: dict[int, set[str]] = {}
    for challenge_id, events in Webhook.objects.filter(active=True).values_list("challenge_id", "events"):
        hooks.setdefault(challenge_id, set()).update(e for e in events or () if isinstance(e, str))
    wanting = ParticipantTeamMember.objects.filter(active_membership(team=OuterRef("team"))).filter(
        wanting_submission_emails("user")
    )
    silent = (
        ParticipantTeamMember.objects.filter(active_membership(user__notification_settings__submission_emails=False))
        .exclude(Exists(wanting))
        .values_list("team_id", flat=True)
        .distinct()
    )
    return Listeners({k: frozenset(v) for k, v in hooks.items()}, frozenset(silent))


def forget(*args, **kwargs) -> None:
    """Empty the cache (a signal receiver as is)."""
    _cache.clear()


def connect() -> None:
    """Called from ``notifications/apps.py``: the rows the answer is read from."""
    for model in (Webhook, NotificationSettings, ParticipantTeamMember):
        post_save.connect(forget, sender=model, dispatch_uid=f"notify-listeners-save-{model.__name__}")
        post_delete.connect(forget, sender=model, dispatch_uid=f"notify-listeners-delete-{model.__name__}")
