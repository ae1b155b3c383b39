"""A phase's rules as the hot paths read them, cached in-process (:mod:`assay.server.row_cache`).

Every submission reads its phase with its challenge (dates, pause, limits, file types: the submit
view), and its phase's splits with their leaderboards' labels three times: the job sent to a worker,
the check of the result, and the leaderboard entries it makes. These change when a host edits or
re-imports the challenge, not per submission, so they are kept for ``ASSAY_PHASE_CACHE_SECONDS``
(default 5; 0: off). A save or delete of a challenge, phase, split, leaderboard or host team empties
the cache at once in the process that makes it (:func:`forget` after the few bulk updates), and other
processes see it within that bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from assay.server.row_cache import RowCache
from assay.server.teams.models import HostTeam

from ..models import Challenge, ChallengePhase, ChallengePhaseSplit, DatasetSplit, Leaderboard


@dataclass(frozen=True)
class SplitRule:
    """One leaderboard of a phase: its phase split, the dataset split's codename and the labels it ranks."""

    phase_split_id: int
    codename: str
    labels: tuple[str, ...]


def _seconds() -> float:
    return settings.PHASE_CACHE_SECONDS


_phases: RowCache[ChallengePhase] = RowCache(_seconds, related=("challenge", "challenge.host_team"))
_splits: RowCache[tuple[SplitRule, ...]] = RowCache(_seconds)


def forget(*args, **kwargs) -> None:
    """Empty both caches (a signal receiver as is; call it after a queryset update of these rows)."""
    _phases.clear()
    _splits.clear()


for _model in (Challenge, ChallengePhase, ChallengePhaseSplit, DatasetSplit, Leaderboard, HostTeam):
    post_save.connect(forget, sender=_model, dispatch_uid=f"phase-rules-save-{_model.__name__}")
    post_delete.connect(forget, sender=_model, dispatch_uid=f"phase-rules-delete-{_model.__name__}")


def phase_with_challenge(phase_id: int) -> ChallengePhase | None:
    """The phase with its challenge and host team (a private copy), or None when there is none."""
    phase = _phases.get(phase_id)
    if phase is None:
        stamp = _phases.stamp()
        phase = ChallengePhase.objects.select_related("challenge__host_team").filter(pk=phase_id).first()
        if phase is not None:
            _phases.put(phase_id, phase, stamp)
    return phase


def split_rules(phase_id: int) -> tuple[SplitRule, ...]:
    """The phase's leaderboards, in phase-split order."""
    rules = _splits.get(phase_id)
    if rules is None:
        stamp = _splits.stamp()
        rows = ChallengePhaseSplit.objects.filter(phase_id=phase_id).select_related("dataset_split", "leaderboard")
        rules = tuple(SplitRule(ps.pk, ps.dataset_split.codename, tuple(ps.leaderboard.labels)) for ps in rows)
        _splits.put(phase_id, rules, stamp)
    return rules
