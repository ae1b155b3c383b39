"""Builders the server, API and CLI tests share: users, host teams, the demo challenge, registered teams,
uploads, tokens, finished submissions, and ``World`` (a challenge with results written as the queue writes
them). One copy of each, so a change to what a user or a registration needs is made once.

Plain functions, not fixtures: a test calls them with what it needs; the fixtures built on them live in
tests/fixtures.py (shared) and the suites' conftests. Django models are imported inside the functions, so
importing this module needs no configured Django.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests import corpus

REPO = Path(__file__).resolve().parents[1]
DEMO_BUNDLE = REPO / "examples" / "demo-challenge"
CORPUS = corpus.CONFIGS  # ../shared/corpus/evalai-configs, never copied into the repo
#: When ``World``'s first result is submitted (one minute apart after that): fixed, so orders are exact.
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def verified(user):
    """Give ``user`` a verified e-mail address, as sign-up plus the link would (hosting needs one)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def make_user(name: str, email: str | None = None, *, password: str = "pw", staff: bool = False, verified: bool = True):
    """A user whose primary address (``name@uni.example`` unless given) is verified unless ``verified=False``."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    email = email or f"{name}@uni.example"
    user = get_user_model().objects.create_user(name, email, password, is_staff=staff)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user


def import_published(host_team, folder: Path = DEMO_BUNDLE, *, user=None):
    """The bundle at ``folder`` (the demo's unless given) imported for ``host_team``, approved and published."""
    from assay.bundle import read_bundle
    from assay.server.challenges.models import Challenge
    from assay.server.challenges.services.bundle_import import import_bundle

    with read_bundle(folder) as bundle:
        challenge = import_bundle(bundle, host_team=host_team, user=user).challenge
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    challenge.refresh_from_db()
    return challenge


def register_team(challenge, user, name: str, *, terms: bool = True):
    """``user``'s new team ``name``, registered (and approved) in ``challenge``; terms accepted unless not."""
    from django.utils import timezone

    from assay.server.challenges.models import Participation
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

    team = ParticipantTeam.objects.create(name=name, created_by=user)
    ParticipantTeamMember.objects.create(team=team, user=user)
    Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=timezone.now() if terms else None)
    return team


def two_challenges(users: dict) -> dict:
    """Two challenges of two host teams; alice's team and bob's team registered in the first.

    ``users`` has the roles ``host``, ``other_host``, ``participant`` and ``other_participant``."""
    from assay.server.teams.services import create_host_team

    team1 = create_host_team("Hosts One", users["host"])
    team2 = create_host_team("Hosts Two", users["other_host"])
    challenge = import_published(team1, user=users["host"])
    other = import_published(team2, user=users["other_host"])
    teams = {
        key: register_team(challenge, users[key], name)
        for key, name in (("participant", "Team Alice"), ("other_participant", "Team Bob"))
    }
    return {"challenge": challenge, "other_challenge": other, "teams": teams, "host_team": team1}


def upload(content: bytes = b'{"dev-a0": 1}', name: str = "preds.json"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def stored_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def token_for(user, days: int = 30) -> str:
    from assay.server.accounts.tokens import create_token

    return create_token(user, "test", days)[1]


def client_for(user=None):
    """An API client, signed in with a bearer token of ``user`` (anonymous without one)."""
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def finish(sub, output: dict | None = None):
    """Complete a queued submission as a worker would, with a result."""
    from assay.server.submissions.services import queue
    from assay.server.submissions.services.tokens import create_worker_token

    token = create_worker_token(None, "test")[0]
    if sub.queue_name != token.queue_name:
        token.queue_name = sub.queue_name
    claimed = queue.claim_next(token, "test-worker")
    assert claimed is not None and claimed.pk == sub.pk, "the submission was not the next in its queue"
    splits = {ps.dataset_split.codename for ps in sub.phase.phase_splits.select_related("dataset_split")}
    output = output or {"result": [{s: {"Accuracy": 0.9, "F1": 0.8}} for s in sorted(splits)]}
    return queue.complete(token, sub.pk, queue.Completion(attempt=claimed.attempt, output=output, stdout="out"))


class World:
    """The demo challenge plus teams and results, written the way the queue writes them (entries, then
    ``refresh_submission`` in the same transaction), so the standings read are the ones production keeps."""

    def __init__(self, challenge, host) -> None:
        self.challenge = challenge
        self.host = host
        self.users: dict[str, Any] = {}
        self.teams: dict[str, Any] = {}
        self.minutes = 0

    def ps(self, phase: str = "dev", split: str = "public"):
        from assay.server.challenges.models import ChallengePhaseSplit

        return ChallengePhaseSplit.objects.select_related("phase__challenge", "leaderboard").get(
            phase__challenge=self.challenge, phase__codename=phase, dataset_split__codename=split
        )

    def team(self, name: str):
        """Team ``name`` (one member, ``user<name>``), registered in the challenge on first use."""
        if name not in self.teams:
            from django.contrib.auth import get_user_model

            from assay.server.challenges.models import Participation
            from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

            user = get_user_model().objects.create_user(f"user{name}", f"{name}@team.example", "pw")
            team = ParticipantTeam.objects.create(name=name, created_by=user)
            ParticipantTeamMember.objects.create(team=team, user=user)
            Participation.objects.create(challenge=self.challenge, team=team)
            self.users[name], self.teams[name] = user, team
        return self.teams[name]

    def result(
        self,
        team: str,
        acc: float | None = None,
        f1: float | None = None,
        *,
        phase: str = "dev",
        private: dict | None = None,
        errors: dict | None = None,
        public: bool = True,
        status: str = "finished",
        baseline: bool = False,
        flagged: bool = False,
        hidden: bool = False,
        by_host: bool = False,
        seconds: float = 10.0,
    ):
        """One submission of ``team`` with its entry on the public split (and ``private`` if given)."""
        from assay.server.challenges.models import ChallengePhase
        from assay.server.leaderboards.models import LeaderboardEntry
        from assay.server.leaderboards.services.standings import refresh_submission
        from assay.server.submissions.models import Submission

        owner = self.team(team)
        self.minutes += 1
        at = T0 + dt.timedelta(minutes=self.minutes)
        sub = Submission.objects.create(
            phase=ChallengePhase.objects.get(challenge=self.challenge, codename=phase),
            participant_team=owner,
            created_by=self.host if by_host else self.users[team],
            status=status,
            is_public=public,
            is_baseline=baseline,
            is_flagged=flagged,
            ignore_submission=hidden,
            started_at=at,
            completed_at=at + dt.timedelta(seconds=seconds),
        )
        Submission.objects.filter(pk=sub.pk).update(submitted_at=at)
        sub.submitted_at = at
        public_result = {k: v for k, v in (("Accuracy", acc), ("F1", f1)) if v is not None}
        for split, result in (("public", public_result), ("private", private)):
            if result is None:
                continue
            LeaderboardEntry.objects.create(
                phase_split=self.ps(phase, split),
                submission=sub,
                participant_team=owner,
                result=result,
                error=(errors or {}).get(split),
            )
        refresh_submission(sub)
        return sub

    def results(self, rows) -> None:
        """Write ``(team, accuracy, f1[, options])`` rows in order, ``options`` being ``result``'s keywords."""
        for team, acc, f1, *options in rows:
            self.result(team, acc, f1, **(options[0] if options else {}))

    def board(self, user=None, phase: str = "dev", split: str = "public", **kw):
        from django.contrib.auth.models import AnonymousUser

        from assay.server.leaderboards.services.ranking import leaderboard

        return leaderboard(user or AnonymousUser(), self.ps(phase, split), **kw)
