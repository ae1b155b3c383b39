"""The version names of the cached read responses (:mod:`assay.server.read_cache`) and the writes of this
layer and below that replace them.

* :data:`LIST` — the challenge list: a challenge's settings, dates and flags (publish, approval, disable),
  its phases, and registrations (``?role=participant``);
* :func:`board` — one challenge's leaderboards: its settings (banned e-mails, listing), phases (public
  flag), dataset splits, leaderboards (labels), phase-splits (visibility, reveal date, display rules) and
  registrations; the leaderboards layer adds results, entries and submissions' marks (``board_cache``);
* :data:`PEOPLE` — names and memberships of teams (host and participant) and accounts (staff flag,
  e-mail: banned teams): shown on, or deciding the audience of, every response.

Receivers run for saves and deletes (cascades included); the few queryset updates of a challenge or its
phases call :func:`challenge_updated`, which does what those receivers would have done.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from assay.server.read_cache import bump
from assay.server.teams.models import HostTeam, HostTeamMember, ParticipantTeam, ParticipantTeamMember

from ..models import Challenge, ChallengePhase, ChallengePhaseSplit, DatasetSplit, Leaderboard, Participation
from . import phase_rules

LIST = "challenges"
PEOPLE = "people"

# a phase or phase-split never moves to another challenge, so where each belongs is kept for good
_phase_challenge: dict[int, int] = {}
_split_challenge: dict[int, int] = {}


def board(challenge_id: int) -> str:
    return f"challenge:{challenge_id}"


def challenge_of_phase(phase_id: int) -> int | None:
    if phase_id not in _phase_challenge:
        found = ChallengePhase.objects.filter(pk=phase_id).values_list("challenge_id", flat=True).first()
        if found is None:
            return None
        _phase_challenge[phase_id] = found
    return _phase_challenge[phase_id]


def challenge_of_split(phase_split_id: int) -> int | None:
    if phase_split_id not in _split_challenge:
        found = (
            ChallengePhaseSplit.objects.filter(pk=phase_split_id).values_list("phase__challenge_id", flat=True).first()
        )
        if found is None:
            return None
        _split_challenge[phase_split_id] = found
    return _split_challenge[phase_split_id]


def challenge_updated(challenge_id: int) -> None:
    """After a queryset ``update()`` of a challenge or of its phases, which sends no signal: the list's and
    the challenge's versions replaced, and the phase rules' in-process cache emptied, as a save would."""
    phase_rules.forget()
    bump(LIST, board(challenge_id))


def _challenge(sender, instance, **kwargs) -> None:
    bump(LIST, board(instance.pk))


def _challenge_part(sender, instance, **kwargs) -> None:
    if sender is ChallengePhase:  # a new row may take the id of one rolled back (SQLite reuses ids then)
        _phase_challenge[instance.pk] = instance.challenge_id
    bump(LIST, board(instance.challenge_id))


def _board_part(sender, instance, **kwargs) -> None:
    bump(board(instance.challenge_id))


def _phase_split(sender, instance, **kwargs) -> None:
    challenge_id = challenge_of_phase(instance.phase_id)
    if challenge_id is not None:  # else the phase went with its challenge, which bumped already
        _split_challenge[instance.pk] = challenge_id
        bump(board(challenge_id))


def _people(sender, instance=None, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a sign-in changes nothing these responses show
    bump(PEOPLE)


_RECEIVERS = [
    (Challenge, _challenge),
    (ChallengePhase, _challenge_part),
    (Participation, _challenge_part),
    (DatasetSplit, _board_part),
    (Leaderboard, _board_part),
    (ChallengePhaseSplit, _phase_split),
    (HostTeam, _people),
    (HostTeamMember, _people),
    (ParticipantTeam, _people),
    (ParticipantTeamMember, _people),
    (get_user_model(), _people),
]


def connect() -> None:
    """Called from ``challenges/apps.py``."""
    for model, receiver in _RECEIVERS:
        post_save.connect(receiver, sender=model, dispatch_uid=f"read-versions-save-{model.__name__}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"read-versions-delete-{model.__name__}")
