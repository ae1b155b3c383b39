"""Every /api/v1 audit answer, on a real journey, matches the OpenAPI schema the serializers document."""

from __future__ import annotations

import pytest
import schemathesis

from tests.factories import make_user, token_for

from .conftest import COMPLETE


@pytest.fixture
def api_schema(db):
    """As Django's test client does: a WSGI request must not close the test's database connection."""
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema", get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_audit_answers_match_the_schema(audit, api_schema):
    from assay.server.audits.models import AuditSummary

    AuditSummary.objects.create(
        submission=audit.sub_a, document={"task": "binary", "n": 2}, settings_sha256="a" * 64, cases_sha256="b" * 64
    )
    carol = make_user("carol", "carol@hospital.example")
    team, host, auditor = (
        {"Authorization": f"Bearer {token_for(u)}"} for u in (audit.alice, audit.host, audit.auditor)
    )
    c, s = {"challenge_id": audit.challenge.pk}, {"submission_id": audit.sub_a.pk}
    r1 = {**s, "review_round": 1}
    base = "/api/v1/submissions/{submission_id}/audit"
    calls = [
        ("POST", "/api/v1/challenges/{challenge_id}/auditors", c, host, {"user": "carol"}, 201),
        ("GET", "/api/v1/challenges/{challenge_id}/auditors", c, host, None, 200),
        ("DELETE", "/api/v1/challenges/{challenge_id}/auditors/{user_id}", {**c, "user_id": carol.pk}, host, None, 204),
        ("GET", base, s, team, None, 200),
        ("GET", f"{base}/answers", s, team, None, 200),
        ("PUT", f"{base}/answers", s, team, {"answers": COMPLETE}, 200),
        ("POST", f"{base}/answers/submit", s, team, None, 200),
        ("POST", f"{base}/reviews", s, auditor, {"second_review_required": False}, 201),
        ("PATCH", f"{base}/reviews/{{review_round}}", r1, auditor, {"ratings": {"risk_tier": {"rating": 5}}}, 200),
        ("POST", f"{base}/reviews/{{review_round}}/decide", r1, auditor, {"decision": "approve"}, 200),
        ("GET", f"{base}/reviews", s, team, None, 200),
        ("POST", f"{base}/release", s, host, None, 201),
        ("GET", base, s, team, None, 200),
        ("POST", f"{base}/retract", s, host, {"reason": "Wrong labels."}, 200),
        ("GET", base, s, auditor, None, 200),
    ]
    for method, path, params, headers, body, status in calls:
        kwargs = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = api_schema[path][method].Case(path_parameters=params, **kwargs)
        response = case.call(headers=headers)
        assert response.status_code == status, (method, path, response.text)
        case.validate_response(response, checks=(schemathesis.checks.response_schema_conformance,))
