"""/api/v1's audit routes over HTTP: the whole journey (auditor named, answers, review, release, retraction)
and the answers' shapes; the route × role statuses are in tests/api/test_route_authz.py."""

from __future__ import annotations

import pytest

from assay.evidence.manifest import check_manifest
from tests.factories import client_for, make_user

from .conftest import COMPLETE

pytestmark = pytest.mark.django_db


def test_the_journey_over_http(audit):
    team, host = client_for(audit.alice), client_for(audit.host)
    carol = make_user("carol", "carol@hospital.example")
    auditor = client_for(carol)
    c, s = audit.challenge.pk, audit.sub_a.pk
    base = f"/api/v1/submissions/{s}/audit"

    added = host.post(f"/api/v1/challenges/{c}/auditors", {"user": "carol@hospital.example"}, format="json")
    assert added.status_code == 201 and added.json()["username"] == "carol"
    listed = host.get(f"/api/v1/challenges/{c}/auditors").json()
    assert [row["username"] for row in listed["results"]] == ["auditor1", "auditor2", "carol"]

    empty = team.get(f"{base}/answers").json()
    assert (empty["state"], empty["answers"], empty["questionnaire"]["version"]) == ("not_started", {}, "1.0")
    assert empty["questionnaire"]["questionnaire_schema"]["sections"][0]["id"] == "purpose"
    bad = team.put(f"{base}/answers", {"answers": {"risk_tier": "medium"}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["problems"] == ["question 'risk_tier': 'medium' is not one of the options ['low', 'high']"]
    assert team.put(f"{base}/answers", {"answers": {"intended_use": "x"}}, format="json").json()["state"] == "draft"
    assert team.post(f"{base}/answers/submit").status_code == 400  # risk_tier is required
    assert team.put(f"{base}/answers", {"answers": COMPLETE}, format="json").status_code == 200
    done = team.post(f"{base}/answers/submit")
    assert done.status_code == 200 and done.json()["state"] == "submitted"
    assert team.put(f"{base}/answers", {"answers": COMPLETE}, format="json").status_code == 409

    started = auditor.post(f"{base}/reviews", {"second_review_required": False}, format="json")
    assert started.status_code == 201 and started.json()["round"] == 1
    rated = auditor.patch(
        f"{base}/reviews/1", {"ratings": {"intended_use": {"rating": 4, "comment": "clear"}}}, format="json"
    )
    assert rated.json()["ratings"] == {"intended_use": {"rating": 4, "comment": "clear"}}
    assert auditor.post(f"{base}/reviews/1/decide", {"decision": "reject"}, format="json").status_code == 400
    decided = auditor.post(f"{base}/reviews/1/decide", {"decision": "approve", "comment": "Fine."}, format="json")
    assert decided.status_code == 200 and decided.json()["decision"] == "approve"
    assert team.get(f"{base}/reviews").json()["results"][0]["ratings"]["intended_use"]["rating"] == 4

    assert team.get(base).json()["may"]["read_results"] is False
    refused = team.get(f"{base}/manifest")
    assert (
        refused.status_code == 403 and "until the challenge's hosts release them" in refused.json()["error"]["message"]
    )
    released = host.post(f"{base}/release")
    assert released.status_code == 201 and released.json()["state"] == "released"
    manifest, trail = team.get(f"{base}/manifest").json(), team.get(f"{base}/trail").json()
    checked = check_manifest(manifest, trail=trail)
    assert checked.ok and checked.verified, checked.problems
    seen = team.get(base).json()
    assert (seen["state"], seen["release"]["state"], seen["may"]["read_results"]) == ("approved", "released", True)
    assert host.post(f"{base}/retract", {"reason": ""}, format="json").status_code == 400
    retracted = host.post(f"{base}/retract", {"reason": "Site B's labels were wrong."}, format="json")
    assert retracted.status_code == 200
    seen = team.get(base).json()
    assert seen["release"]["retraction_reason"] == "Site B's labels were wrong." and seen["summary"] is None
    gone = team.get(f"{base}/trail")
    assert gone.status_code == 403 and "Site B's labels were wrong." in gone.json()["error"]["message"]

    removed = host.delete(f"/api/v1/challenges/{c}/auditors/{carol.pk}")
    assert removed.status_code == 204
    assert auditor.get(base).status_code == 404


@pytest.mark.parametrize(
    ("method", "tail", "data"),
    [
        ("put", "answers", [1, 2]),
        ("put", "answers", {"answers": {"intended_use": "a\x00b"}}),
        ("put", "answers", {}),
        ("post", "reviews", {"second_review_required": "sometimes"}),
    ],
)
def test_malformed_bodies_are_a_clear_400(audit, method, tail, data):
    response = getattr(client_for(audit.alice if tail == "answers" else audit.auditor), method)(
        f"/api/v1/submissions/{audit.sub_a.pk}/audit/{tail}", data, format="json"
    )
    assert response.status_code == 400, response.content


def test_another_team_and_other_challenges_auditors_get_404(audit):
    for user in (audit.bob, make_user("elsewhere")):
        client = client_for(user)
        for path in ("", "/answers", "/reviews"):
            assert client.get(f"/api/v1/submissions/{audit.sub_a.pk}/audit{path}").status_code == 404
    assert client_for(audit.alice).get("/api/v1/submissions/999999/audit").status_code == 404
