"""Schemathesis against the OpenAPI schema of /api/v1: generated (and hostile) requests, no server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.factories import token_for, upload


def _schema():
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    return schemathesis.openapi.from_wsgi("/api/v1/schema", get_wsgi_application())


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(db, keep_connection):
    return _schema()


@pytest.fixture
def keep_connection():
    """As Django's test client does: a WSGI request must not close the test's database connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_header(world, users, keep_connection):
    return {"Authorization": f"Bearer {token_for(users['participant'])}"}


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db(transaction=False)
def test_no_server_error(case, auth_header):
    if "worker/" in case.path or case.path.endswith("/docs"):
        return  # the worker protocol has its own tests (it long-polls); docs are HTML
    response = case.call(headers=auth_header)
    # and every documented answer has the documented shape (a page where the schema says page)
    case.validate_response(
        response,
        checks=(schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance),
    )


@pytest.mark.django_db(transaction=False)
def test_list_endpoints_answer_the_documented_page(api_schema, world, users, keep_connection):
    """The fuzzer rarely hits an id that exists: read each paginated list with real rows and check each
    answer (a page of items) against the operation's schema."""
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.services import invite

    phase = world["challenge"].phases.get(codename="test")
    submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    team = world["teams"]["participant"]
    invite(users["participant"], team, "carol@uni.example")
    auth = {"Authorization": f"Bearer {token_for(users['participant'])}"}
    for path, params in (
        ("/api/v1/tokens", {}),
        ("/api/v1/challenges", {}),
        ("/api/v1/phases/{phase_id}/submissions", {"phase_id": phase.pk}),
        ("/api/v1/teams", {}),
        ("/api/v1/teams/{team_id}/invitations", {"team_id": team.pk}),
    ):
        operation = api_schema[path]["GET"]
        case = operation.Case(path_parameters=params, query={"page_size": 1})
        response = case.call(headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] >= 1 and len(body["results"]) == 1, body
        case.validate_response(response, checks=(schemathesis.checks.response_schema_conformance,))


@pytest.mark.parametrize("field", ["method_description", "phase_id"])
@pytest.mark.parametrize("digits", ["9" * 5000, "0" * 5000, "-" + "0" * 4999 + "1"])
def test_a_long_digit_string_in_a_form_is_no_server_error(field, digits):
    """What the fuzzer found: int() of over 4300 digits raised ValueError inside the guard (a 500)."""
    from assay.server.api.guards import Refused, check_form

    try:
        check_form([(field, [digits])], [])
    except Refused as refused:
        assert refused.status == 400 and field == "phase_id" and digits.startswith("9")


@pytest.mark.django_db(transaction=False)
def test_answers_once_free_form_match_their_serializers(api_schema, world, users, keep_connection):
    """Login, new tokens, whoami, the lists that became pages, the hosts' submission list, registration,
    remaining submissions and resumable uploads: real answers checked against the documented schema."""
    import hashlib

    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="test")
    submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    challenge = world["challenge"].pk
    mine = {"Authorization": f"Bearer {token_for(users['participant'])}"}
    hosts = {"Authorization": f"Bearer {token_for(users['host'])}"}
    data = b"x" * 2048
    calls = [
        ("POST", "/api/v1/auth/login", {}, {}, {"username": "host1", "password": "pw"}, 201),
        ("POST", "/api/v1/tokens", {}, mine, {"name": "laptop"}, 201),
        ("GET", "/api/v1/auth/whoami", {}, mine, None, 200),
        ("GET", "/api/v1/challenges/{challenge_id}/phases", {"challenge_id": challenge}, mine, None, 200),
        ("GET", "/api/v1/challenges/{challenge_id}/splits", {"challenge_id": challenge}, mine, None, 200),
        ("GET", "/api/v1/challenges/{challenge_id}/phase-splits", {"challenge_id": challenge}, mine, None, 200),
        ("GET", "/api/v1/challenges/{challenge_id}/submissions", {"challenge_id": challenge}, hosts, None, 200),
        ("GET", "/api/v1/challenges/{challenge_id}/participation", {"challenge_id": challenge}, mine, None, 200),
        ("GET", "/api/v1/phases/{phase_id}/remaining", {"phase_id": phase.pk}, mine, None, 200),
        (
            "POST",
            "/api/v1/phases/{phase_id}/uploads",
            {"phase_id": phase.pk},
            mine,
            {"file_name": "big.json", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
            201,
        ),
    ]
    for method, path, params, headers, body, status in calls:
        kwargs = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = api_schema[path][method].Case(path_parameters=params, **kwargs)
        response = case.call(headers=headers)
        assert response.status_code == status, (path, response.text)
        case.validate_response(response, checks=(schemathesis.checks.response_schema_conformance,))
    upload_id = response.json()["id"]
    case = api_schema["/api/v1/uploads/{upload_id}"]["GET"].Case(path_parameters={"upload_id": upload_id})
    response = case.call(headers=mine)
    assert response.status_code == 200 and response.json()["missing_parts"] == [1], response.text
    case.validate_response(response, checks=(schemathesis.checks.response_schema_conformance,))
