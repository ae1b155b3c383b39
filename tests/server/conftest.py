"""Server test fixtures: isolated file storage, users, teams, the demo challenge, and a ``World`` of results.

The builders live in tests/factories.py; the fixtures every Django suite shares in tests/fixtures.py."""

from __future__ import annotations

import pytest

from tests.factories import World, import_published, register_team, verified
from tests.fixtures import fast_password_hashing, media, no_throttling  # noqa: F401  (this suite's fixtures)
from tests.s3 import s3_bucket, s3_server, s3_storage  # noqa: F401  (a real S3 API server: tests/s3.py)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "results(*rows): the (team, accuracy, f1[, options]) rows the `world` fixture starts with"
    )


@pytest.fixture
def host(django_user_model):
    return verified(django_user_model.objects.create_user("host1", "host1@example.org", "pw"))


@pytest.fixture
def host_team(host):
    from assay.server.teams.services import create_host_team

    return create_host_team("Hosts One", host)


@pytest.fixture
def demo_challenge(media, host_team):  # noqa: F811  (the shared fixture, imported above)
    """The demo bundle imported, approved and published."""
    return import_published(host_team)


@pytest.fixture
def participant(django_user_model):
    return verified(django_user_model.objects.create_user("alice", "alice@uni.example", "pw"))


@pytest.fixture
def team(participant, demo_challenge):
    """Alice's team, registered (and approved) in the demo challenge."""
    return register_team(demo_challenge, participant, "Team Alice")


@pytest.fixture
def world(request, demo_challenge, host) -> World:
    """The demo challenge's ``World``, with the rows of the closest ``@pytest.mark.results(...)`` written
    first (a module marks it once in ``pytestmark``; a test's own mark wins)."""
    world = World(demo_challenge, host)
    marker = request.node.get_closest_marker("results")
    world.results(marker.args if marker else ())
    return world


@pytest.fixture
def task_runner():
    """The background-task thread ``assay serve`` runs (audit summaries, e-mails, webhooks), for tests whose
    server answers over live HTTP; stopped and joined after the test."""
    from assay.server.tasks import runner

    started = runner.start()
    yield started
    started.stop()
    started.thread.join(10)
    runner._current = None  # this process runs no task thread again (its health must not read a stopped one)
