"""API test fixtures: the demo challenge, users with verified e-mail addresses, teams, tokens."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.server.conftest import DEMO_BUNDLE, REPO, clear_throttle_counts, stored_files, upload  # noqa: F401


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_throttling(request, monkeypatch) -> None:
    """Throttling has its own tests; elsewhere a test's many calls must not trip it.
    (DRF reads the rates once, at import: patch the class attribute, not the settings.)"""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "10000/min", "submit": "10000/min"})
    clear_throttle_counts(request)


@pytest.fixture
def media(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def make_user(name: str, *, staff: bool = False, password: str = "pw"):
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(name, f"{name}@uni.example", password, is_staff=staff)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def users(db):
    """Every role of the authorization matrix."""
    return {
        "host": make_user("host1"),
        "other_host": make_user("host2"),
        "participant": make_user("alice"),
        "other_participant": make_user("bob"),
        "admin": make_user("root1", staff=True),
    }


@pytest.fixture
def world(media, users):
    """Two challenges of two host teams; alice's team and bob's team registered in the first."""
    from assay.bundle import read_bundle
    from assay.server.challenges.models import Challenge, Participation
    from assay.server.challenges.services.bundle_import import import_bundle
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
    from assay.server.teams.services import create_host_team

    team1 = create_host_team("Hosts One", users["host"])
    team2 = create_host_team("Hosts Two", users["other_host"])
    with read_bundle(DEMO_BUNDLE) as bundle:
        challenge = import_bundle(bundle, host_team=team1, user=users["host"]).challenge
    with read_bundle(DEMO_BUNDLE) as bundle:
        other = import_bundle(bundle, host_team=team2, user=users["other_host"]).challenge
    Challenge.objects.filter(pk__in=[challenge.pk, other.pk]).update(approved_by_admin=True, published=True)
    teams = {}
    for key, name in (("participant", "Team Alice"), ("other_participant", "Team Bob")):
        team = ParticipantTeam.objects.create(name=name, created_by=users[key])
        ParticipantTeamMember.objects.create(team=team, user=users[key])
        Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=timezone.now())
        teams[key] = team
    challenge.refresh_from_db()
    other.refresh_from_db()
    return {"challenge": challenge, "other_challenge": other, "teams": teams, "host_team": team1}


def token_for(user, days: int = 30) -> str:
    from assay.server.accounts.tokens import create_token

    return create_token(user, "test", days)[1]


def client_for(user=None) -> APIClient:
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
