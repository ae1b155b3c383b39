"""Host statistics: the service's figures from grouped queries, the page with its chart and table, the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from assay.server.challenges.models import Participation
from assay.server.challenges.services.hosting import HostingError
from assay.server.submissions.models import Submission
from assay.server.submissions.services.statistics import challenge_statistics
from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
from tests.factories import client_for as api_client

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def _sub(world, team: str, *, day: int, status: str = "finished", seconds: float = 10.0, reason: str = ""):
    sub = world.result(team, 0.5, 0.5, status=status, seconds=seconds)
    at = T0 + dt.timedelta(days=day)
    Submission.objects.filter(pk=sub.pk).update(
        submitted_at=at, started_at=at, completed_at=at + dt.timedelta(seconds=seconds), failure_reason=reason
    )
    return sub


@pytest.fixture
def busy(world):
    _sub(world, "A", day=0, seconds=4)
    _sub(world, "A", day=0, status="failed", reason="Traceback: KeyError 'x'")
    _sub(world, "B", day=0, status="failed", reason="Traceback: KeyError 'x'")
    _sub(world, "B", day=2, seconds=8)
    _sub(world, "C", day=2, seconds=30)
    _sub(world, "C", day=2, seconds=2, status="failed", reason="")
    _sub(world, "C", day=3, seconds=12)
    # a second member of team C, a team waiting for approval (not counted as participants)
    extra = type(world.users["C"]).objects.create_user("c2", "c2@team.example", "pw")
    ParticipantTeamMember.objects.create(team=world.teams["C"], user=extra)
    waiting = ParticipantTeam.objects.create(name="W", created_by=extra)
    Participation.objects.create(challenge=world.challenge, team=waiting, status=Participation.Status.PENDING)
    return world


def test_figures(busy, host, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        stats = challenge_statistics(host, busy.challenge)
    assert [(d.day.isoformat(), d.submissions, d.failed) for d in stats.days] == [
        ("2026-03-01", 3, 2),
        ("2026-03-03", 3, 1),
        ("2026-03-04", 1, 0),
    ]
    assert (stats.submissions, stats.failed) == (7, 3)
    assert (stats.teams_registered, stats.teams_waiting, stats.participants) == (3, 1, 4)
    assert [(r.reason, r.count) for r in stats.failure_reasons] == [
        ("Traceback: KeyError 'x'", 2),
        ("(no reason given)", 1),
    ]
    assert stats.median_evaluation_seconds == pytest.approx(10.0)  # of 4, 8, 12, 30: (8 + 12) / 2
    assert stats.evaluated == 4


def test_only_hosts(busy, participant):
    with pytest.raises(HostingError):
        challenge_statistics(participant, busy.challenge)


def test_page_and_api(busy, host, participant):
    c = Client()
    c.force_login(host)
    page = c.get(f"/challenges/{busy.challenge.pk}/host/statistics")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Submissions per day" in html and 'class="bar failed"' in html
    assert "<td>2026-03-03</td>" in html and "Traceback: KeyError &#x27;x&#x27;" in html
    assert "10.0 s" in html
    other = Client()
    other.force_login(participant)
    assert other.get(f"/challenges/{busy.challenge.pk}/host/statistics").status_code == 404
    answer = api_client(host).get(f"/api/v1/challenges/{busy.challenge.pk}/statistics")
    assert answer.status_code == 200
    body = answer.json()
    assert body["submissions"] == 7 and body["per_day"][0] == {"day": "2026-03-01", "submissions": 3, "failed": 2}
    assert body["median_evaluation_seconds"] == pytest.approx(10.0)
    assert api_client(participant).get(f"/api/v1/challenges/{busy.challenge.pk}/statistics").status_code == 403


def test_empty_challenge(demo_challenge, host):
    stats = challenge_statistics(host, demo_challenge)
    assert stats.days == [] and stats.median_evaluation_seconds is None
    c = Client()
    c.force_login(host)
    assert b"No submissions yet." in c.get(f"/challenges/{demo_challenge.pk}/host/statistics").content
