"""Server test fixtures: isolated file storage, users and teams."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from tests import corpus

REPO = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = REPO / "examples" / "demo-challenge"
CORPUS = corpus.CONFIGS  # ../shared/corpus/evalai-configs, never copied into the repo


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Real hashing costs ~0.5 s per user: tests that make users would spend minutes on it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_throttling(request, monkeypatch) -> None:
    """Rate limits count per user id across tests of one process (ids repeat); reset them, raised high.

    Throttling itself is tested in tests/api, with its own rates."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "10000/min", "submit": "10000/min"})
    clear_throttle_counts(request)


DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}


def clear_throttle_counts(request) -> None:
    """Empty the cache (throttle and allauth rate-limit counts). It lives in the database, so only a test
    that may use the database can have counts to clear; a rolled-back test's counts vanish anyway, a
    transactional (live server) test's stay until cleared here."""
    if not (DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")):
        return
    from django.core.cache import cache

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        cache.clear()


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """File storage in a fresh folder, so tests can assert exactly what was written."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def verified(user):
    """Give ``user`` a verified e-mail address, as sign-up plus the link would (hosting needs one)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def host(django_user_model):
    return verified(django_user_model.objects.create_user("host1", "host1@example.org", "pw"))


@pytest.fixture
def host_team(host):
    from assay.server.teams.services import create_host_team

    return create_host_team("Hosts One", host)


def stored_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def demo_challenge(media, host_team):
    """The demo bundle imported, approved and published."""
    from assay.bundle import read_bundle
    from assay.server.challenges.models import Challenge
    from assay.server.challenges.services.bundle_import import import_bundle

    with read_bundle(DEMO_BUNDLE) as bundle:
        challenge = import_bundle(bundle, host_team=host_team).challenge
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    challenge.refresh_from_db()
    return challenge


@pytest.fixture
def participant(django_user_model):
    return verified(django_user_model.objects.create_user("alice", "alice@uni.example", "pw"))


@pytest.fixture
def team(participant, demo_challenge):
    """Alice's team, registered (and approved) in the demo challenge."""
    from assay.server.challenges.models import Participation
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

    team = ParticipantTeam.objects.create(name="Team Alice", created_by=participant)
    ParticipantTeamMember.objects.create(team=team, user=participant)
    Participation.objects.create(challenge=demo_challenge, team=team, terms_accepted_at=timezone.now())
    return team


def upload(content: bytes = b'{"dev-a0": 1}', name: str = "preds.json"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")
