"""``GET /api/v1/submissions/{id}``: who may read a submission and its logs, per role with the exact status,
and what one read costs in statements (a client waiting for a result asks it every few hundred milliseconds).

The view asks one ``ResultReader`` for the rights (``may_view``, ``may_read_logs``), the output and the result
URL, so each role is checked here against the rules of ``submissions.services.access`` it must equal."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import client_for, finish, upload

pytestmark = pytest.mark.django_db

# role → status of the read (a stranger is told there is no such submission, never "forbidden")
STATUS = {"anonymous": 401, "participant": 200, "other_participant": 404, "host": 200, "other_host": 404, "admin": 200}


@pytest.fixture
def finished(world, users):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="dev")
    sub = submit(users["participant"], phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields())
    return finish(sub)


def read(users, role: str, sub):
    return client_for(users.get(role)).get(f"/api/v1/submissions/{sub.pk}")


@pytest.mark.parametrize("role", STATUS)
def test_each_role_reads_a_submission_as_the_access_rules_say(finished, users, role):
    from assay.server.submissions.services.access import can_view, can_view_logs

    response = read(users, role, finished)
    assert response.status_code == STATUS[role], response.content
    user = users.get(role)
    if user is not None:
        assert can_view(user, finished) is (response.status_code == 200)
    if response.status_code == 200:
        body = response.json()
        assert body["id"] == finished.pk and body["status"] == "finished"
        assert body["created_by"] == users["participant"].username
        assert ("stdout" in body) is can_view_logs(user, finished) is True
        assert body["stdout"] == "out"


@pytest.mark.parametrize("hidden_by", ["disable_logs", "docker"])
def test_a_phase_that_hides_logs_hides_them_from_the_team_not_the_hosts(finished, users, hidden_by):
    from assay.server.challenges.models import Challenge, ChallengePhase
    from assay.server.submissions.services.access import can_view_logs

    if hidden_by == "docker":
        Challenge.objects.filter(pk=finished.phase.challenge_id).update(is_docker_based=True)
    else:
        ChallengePhase.objects.filter(pk=finished.phase_id).update(disable_logs=True)
    finished.refresh_from_db()
    team = read(users, "participant", finished)
    assert team.status_code == 200
    assert "stdout" not in team.json() and "stderr" not in team.json()
    assert can_view_logs(users["participant"], finished) is False
    for role in ("host", "admin"):
        body = read(users, role, finished).json()
        assert body["stdout"] == "out" and can_view_logs(users[role], finished) is True


def test_a_read_costs_four_statements_whoever_reads(finished, users):
    """The submission with its phase, challenge, team, creator and data package in one query; then the
    reader's host membership, team membership and the phase's split visibilities, each once."""
    for role in ("participant", "host"):
        client = client_for(users[role])
        client.get(f"/api/v1/submissions/{finished.pk}")  # the token's first use writes its last_used_at
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/api/v1/submissions/{finished.pk}").status_code == 200
        assert len(captured.captured_queries) <= 4, [q["sql"][:120] for q in captured.captured_queries]


def test_no_such_submission_and_an_id_no_column_holds(users):
    client = client_for(users["participant"])
    assert client.get("/api/v1/submissions/999999").status_code == 404
    assert client.get(f"/api/v1/submissions/{2**63}").status_code == 404
