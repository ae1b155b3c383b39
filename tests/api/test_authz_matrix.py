"""Authorization matrix: every endpoint (native and EvalAI-compatible) × every role. Nothing private
leaks: no hidden leaderboard, other team's submission, file, log, annotation or token."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .conftest import client_for, finish, upload

ROLES = ["anonymous", "other_participant", "participant", "other_host", "host", "other_worker", "admin"]
OK = (200, 201, 204)


@pytest.fixture
def setup(world, users):
    from assay.server.challenges.models import ChallengePhaseSplit
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.submissions.services.tokens import create_worker_token

    challenge = world["challenge"]
    dev = challenge.phases.get(codename="dev")
    sub = submit(users["participant"], dev, upload(b'{"dev-a0": 1}'), "alice.json", SubmissionFields(is_public=False))
    sub = finish(sub)
    from assay.server.challenges.models import Challenge

    Challenge.objects.filter(pk=world["other_challenge"].pk).update(remote_evaluation=True)
    world["other_challenge"].refresh_from_db()
    other_worker = create_worker_token(None, "other", world["other_challenge"])[1]
    hidden = ChallengePhaseSplit.objects.get(phase__challenge=challenge, visibility=1)
    clients = {
        role: client_for(users[role]) for role in ("other_participant", "participant", "other_host", "host", "admin")
    }
    clients["anonymous"] = APIClient()
    worker = APIClient()
    worker.credentials(HTTP_AUTHORIZATION=f"Bearer {other_worker}")
    clients["other_worker"] = worker
    return {"sub": sub, "challenge": challenge, "dev": dev, "hidden": hidden, "clients": clients}


def _cases(s):
    c, sub, dev, hidden = s["challenge"].pk, s["sub"].pk, s["dev"].pk, s["hidden"].pk
    return [
        # (method, path, roles allowed)
        ("get", f"/api/v1/submissions/{sub}", {"participant", "host", "admin"}),
        ("get", f"/api/v1/submissions/{sub}/stdout", {"participant", "host", "admin"}),
        ("get", f"/api/v1/submissions/{sub}/result", {"participant", "host", "admin"}),
        ("get", f"/api/v1/challenges/{c}/submissions", {"host", "admin"}),
        ("get", f"/api/v1/challenges/{c}/worker-tokens", {"host", "admin"}),
        ("get", f"/api/v1/phase-splits/{hidden}/leaderboard", {"host", "admin"}),
        ("get", f"/api/v1/phases/{dev}/remaining", {"participant", "other_participant"}),
        ("get", "/api/v1/tokens", {"other_participant", "participant", "other_host", "host", "admin"}),
        ("get", f"/api/jobs/submission/{sub}", {"participant", "host", "admin"}),
        ("get", f"/api/jobs/challenge_phase_split/{hidden}/leaderboard/", {"host", "admin"}),
        ("get", f"/api/jobs/phase_split/{hidden}/public_leaderboard_all_entries/", {"host", "admin"}),
        ("get", f"/api/jobs/challenge/{c}/challenge_phase/{dev}/submission/", {"participant", "other_participant"}),
        (
            "get",
            f"/api/jobs/submission_files/?bucket=assay&key={s['sub'].stdout_file.name}",
            {"participant", "host", "admin"},
        ),
        ("get", f"/api/jobs/challenge/queues/challenge-{c}/", set()),  # not a remote challenge: nobody
        ("get", f"/api/jobs/{c}/remaining_submissions/", {"participant", "other_participant"}),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_matrix(setup, role):
    client = setup["clients"][role]
    for method, path, allowed in _cases(setup):
        response = getattr(client, method)(path)
        if role in allowed:
            assert response.status_code in OK, (role, path, response.status_code, response.content[:200])
        else:
            assert response.status_code >= 400, (role, path, response.status_code, response.content[:300])
        if role not in ("participant", "host", "admin"):
            body = response.content.decode(errors="replace")
            assert "alice.json" not in body and "Accuracy" not in body, (role, path)


@pytest.mark.parametrize("role", ROLES)
def test_no_leak_in_listings(setup, role):
    """Lists never carry another team's submission, a hidden split's numbers, or annotation URLs."""
    client = setup["clients"][role]
    c = setup["challenge"].pk
    for path in (f"/api/v1/challenges/{c}/phase-splits", f"/api/challenges/{c}/challenge_phase_split"):
        r = client.get(path)
        if role in ("host", "admin"):
            continue
        if r.status_code == 200:
            assert setup["hidden"].pk not in [row["id"] for row in r.json()], (role, path)
    for path in (f"/api/challenges/challenge/{c}/challenge_phase", f"/api/v1/challenges/{c}/phases"):
        r = client.get(path)
        if r.status_code == 200 and role not in ("host", "admin"):
            assert "annotations/" not in r.content.decode(), (role, path)


def test_mutations_refused_to_others(setup, users):
    sub = setup["sub"].pk
    for role in ("other_participant", "other_host", "anonymous", "other_worker"):
        client = setup["clients"][role]
        assert client.post(f"/api/v1/submissions/{sub}/cancel").status_code >= 400
        assert client.post(f"/api/v1/submissions/{sub}/rerun").status_code >= 400
        assert (
            client.patch(f"/api/v1/submissions/{sub}/visibility", {"is_public": True}, format="json").status_code >= 400
        )
        assert client.patch(f"/api/v1/submissions/{sub}/marks", {"is_flagged": True}, format="json").status_code >= 400
        assert client.post(f"/api/jobs/submissions/{sub}/re-run/").status_code >= 400
    participant = setup["clients"]["participant"]
    assert (
        participant.patch(f"/api/v1/submissions/{sub}/marks", {"is_baseline": True}, format="json").status_code == 403
    )


def test_token_of_another_user_cannot_be_revoked(setup, users):
    from assay.server.accounts.models import ApiToken

    mine = ApiToken.objects.filter(user=users["participant"]).first()
    r = setup["clients"]["other_participant"].delete(f"/api/v1/tokens/{mine.pk}")
    assert r.status_code == 404
    mine.refresh_from_db()
    assert mine.revoked_at is None
