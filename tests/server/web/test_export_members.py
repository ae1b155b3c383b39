"""A host's exports name a team's *active* members (``teams.services.ActiveMembersOf``, over the one rule
``active_membership``): someone only invited to the team is not its member, and their e-mail is not the host's
to see. Every face that exports a team's people: the web's submissions and participants CSVs and /api/v1's
submissions CSV."""

from __future__ import annotations

import csv
import io

import pytest

from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.teams.models import ParticipantTeamMember
from tests.factories import client_for as api_client
from tests.factories import upload
from tests.server.web.test_web_host import client_for as web_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def exports(demo_challenge, team, participant, host, media, django_user_model):
    """Alice's team with Bob an active member and Eve only invited, two submissions; the host's three exports."""
    bob = django_user_model.objects.create_user("bob", "bob@uni.example", "pw")
    eve = django_user_model.objects.create_user("eve", "eve@elsewhere.example", "pw")
    ParticipantTeamMember.objects.create(team=team, user=bob)
    ParticipantTeamMember.objects.create(team=team, user=eve, status=ParticipantTeamMember.Status.INVITED)
    phase = demo_challenge.phases.get(codename="dev")
    for _ in range(2):
        submit(participant, phase, upload(), "preds.json", SubmissionFields())
    web, api = web_client(host), api_client(host)
    base = f"/challenges/{demo_challenge.pk}/host/export"

    def rows(response) -> list[dict]:
        assert response.status_code == 200
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return list(csv.DictReader(io.StringIO(body.decode())))

    return {
        "web submissions": rows(web.get(f"{base}/submissions.csv")),
        "web participants": rows(web.get(f"{base}/participants.csv")),
        "api submissions": rows(api.get(f"/api/v1/challenges/{demo_challenge.pk}/submissions?export=csv")),
    }


def test_the_submissions_exports_name_active_members_only(exports):
    web, api = exports["web submissions"], exports["api submissions"]
    assert len(web) == len(api) == 2
    assert {r["members"] for r in web} == {"alice bob"} and {r["emails"] for r in web} == {
        "alice@uni.example bob@uni.example"
    }
    assert {r["members"] for r in api} == {"alice, bob"}


def test_the_participants_export_lists_active_members_only(exports):
    rows = exports["web participants"]
    assert [(r["team"], r["member"], r["email"]) for r in rows] == [
        ("Team Alice", "alice", "alice@uni.example"),
        ("Team Alice", "bob", "bob@uni.example"),
    ]
