"""Hostile input on every API face answers an exact 4xx in that API's JSON error shape, never a 500 or HTML.

Run on SQLite (the default) and on PostgreSQL (ASSAY_DATABASE_URL=postgres://…): NUL bytes and 64-bit
overflows fail differently on each, and the guard (assay.server.api.guards) must stop both.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import client_for, upload

from .routes import sample_path, url_routes

pytestmark = pytest.mark.django_db

DEEP = "[" * 200_000 + "]" * 200_000
DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100
BIG = 10**30


def native(r, status: int, code: str | None = None) -> dict:
    """/api/v1's shape: {"error": {"code", "message"}}."""
    assert r.status_code == status, (r.status_code, r.content[:300])
    assert r["Content-Type"].startswith("application/json"), r.content[:200]
    error = r.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code, error
    return error


def evalai(r, status: int) -> str:
    """EvalAI's shape: {"error": "…"} (its CLI prints it), as the adapter answers every refusal."""
    assert r.status_code == status, (r.status_code, r.content[:300])
    assert r["Content-Type"].startswith("application/json"), r.content[:200]
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


def post_json(client, path: str, raw: str, method: str = "POST"):
    return client.generic(method, path, raw, content_type="application/json")


@pytest.fixture
def ids(world, users):
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.services.tokens import create_worker_token

    challenge = world["challenge"]
    Challenge.objects.filter(pk=challenge.pk).update(remote_evaluation=True)
    challenge.refresh_from_db()
    dev = challenge.phases.get(codename="dev")
    worker = create_worker_token(None, "guard", challenge)[1]  # the challenge's own queue (remote evaluation)
    return {"c": challenge.pk, "dev": dev.pk, "team": world["teams"]["participant"].pk, "worker": worker}


def worker_client(token: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- bodies: depth, non-objects, NUL, numbers out of range -----------------------------------------------


@pytest.mark.parametrize(
    "raw", [DEEP, DEEP_OBJECT, '"just a string"', "[1, 2]", "null", "12", "{bad json"], ids=lambda raw: raw[:12]
)
def test_native_bodies_are_refused(ids, users, raw):
    alice = client_for(users["participant"])
    for path in ("/api/v1/teams", f"/api/v1/phases/{ids['dev']}/uploads", "/api/v1/tokens"):
        native(post_json(alice, path, raw), 400, "invalid")
    native(post_json(worker_client(ids["worker"]), "/api/v1/worker/jobs/1/complete", raw), 400, "invalid")


@pytest.mark.parametrize(
    "raw", [DEEP, DEEP_OBJECT, '"just a string"', "[1, 2]", "null", "{bad json"], ids=lambda raw: raw[:12]
)
def test_evalai_bodies_are_refused(ids, users, raw):
    alice = client_for(users["participant"])
    c, dev = ids["c"], ids["dev"]
    for path in (
        "/api/participants/participant_team",
        f"/api/jobs/phases/{dev}/get_submission_file_presigned_url/",
        f"/api/jobs/challenge/{c}/challenge_phase/{dev}/submission/",
    ):
        evalai(post_json(alice, path, raw), 400)
    evalai(post_json(worker_client(ids["worker"]), f"/api/jobs/challenge/{c}/update_submission/", raw, "PUT"), 400)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/teams", {"name": "a\x00b"}),
        ("/api/v1/teams", {"name": "ok", "team_url": "x\x00"}),
        ("/api/v1/teams", {"name\x00": "ok"}),
        ("/api/v1/auth/login", {"username": "alice\x00", "password": "pw"}),
        ("/api/v1/tokens", {"name": "n", "days": 1e400}),
        ("/api/v1/tokens", {"name": "n", "days": 2**64}),
        ("/api/v1/tokens", {"name": "n", "days": -(2**70)}),
        ("/api/v1/tokens", {"name": "n", "days": float("nan")}),
    ],
)
def test_native_fields_are_refused(ids, users, path, body):
    raw = json.dumps(body)  # 1e400 is written as Infinity: send the literal an attacker would
    raw = raw.replace("Infinity", "1e400").replace(str(2**64), "18446744073709551616")
    native(post_json(client_for(users["participant"]), path, raw), 400, "invalid")


def test_evalai_fields_are_refused(ids, users):
    alice = client_for(users["participant"])
    c, dev = ids["c"], ids["dev"]
    presign = f"/api/jobs/phases/{dev}/get_submission_file_presigned_url/"
    assert "out of range" in evalai(post_json(alice, presign, '{"num_file_chunks": 1e400, "file_name": "a"}'), 400)
    evalai(post_json(alice, presign, '{"num_file_chunks": 1, "file_name": "a\\u0000.json"}'), 400)
    evalai(post_json(alice, "/api/auth/login", '{"username": "al\\u0000ice", "password": "pw"}'), 400)
    evalai(post_json(alice, "/api/participants/participant_team", '{"team_name": "T\\u0000"}'), 400)
    evalai(post_json(alice, "/api/participants/participant_team", '{"team_name": "T\\ud800"}'), 400)
    evalai(post_json(alice, "/api/auth/login", '{"username": "\\udfff", "password": "pw"}'), 400)
    submit = f"/api/jobs/challenge/{c}/challenge_phase/{dev}/submission/"
    good = b'{"dev-a0": 1}'
    r = alice.post(submit, {"input_file": upload(good), "method_name": "m\x00"}, format="multipart")
    evalai(r, 400)
    worker = worker_client(ids["worker"])
    body = {"submission": str(BIG), "submission_status": "finished"}
    evalai(worker.put(f"/api/jobs/challenge/{c}/update_submission/", body, format="json"), 400)
    from assay.server.submissions.models import Submission

    assert not Submission.objects.exists()  # nothing was half-made by any refusal
    # a multipart file name is cleaned by Django itself (non-printables dropped): accepted, stored without NUL
    r = alice.post(submit, {"input_file": upload(good, "a\x00.json"), "method_name": "m"}, format="multipart")
    assert r.status_code == 201, r.content[:300]
    assert "\x00" not in Submission.objects.get().input_file.name


def test_native_submit_refuses_nul_in_multipart(ids, users):
    alice = client_for(users["participant"])
    path = f"/api/v1/phases/{ids['dev']}/submissions"
    r = alice.post(path, {"input_file": upload(b'{"dev-a0": 1}'), "method_name": "m\x00"}, format="multipart")
    native(r, 400, "invalid")


def test_worker_logs_may_hold_nul(ids):
    """A log is stored as a file: NUL in a remote worker's stdout passes the guard (its result is not lost)."""
    body = '{"submission": 999999, "submission_status": "finished", "stdout": "a\\u0000", "stderr": "\\u0000"}'
    path = f"/api/jobs/challenge/{ids['c']}/update_submission/"
    r = post_json(worker_client(ids["worker"]), path, body, "PUT")
    assert evalai(r, 406) == "Submission does not exist"  # past the guard: the adapter decides


# --- ids out of range in URLs and filters: "not found" (406 is EvalAI's "does not exist") -------------------


def test_ids_out_of_range(ids, users):
    host = client_for(users["host"])
    native(host.get(f"/api/v1/submissions/{BIG}"), 404, "not_found")
    native(host.get(f"/api/v1/challenges/{ids['c']}/submissions?phase={BIG}"), 404, "not_found")
    native(host.get(f"/api/v1/teams/{BIG}"), 404, "not_found")
    native(host.delete(f"/api/v1/worker-tokens/{BIG}"), 404, "not_found")
    evalai(host.get(f"/api/jobs/challenge/{ids['c']}/challenge_phase/{BIG}/submission/"), 406)
    evalai(host.get(f"/api/jobs/submission/{BIG}"), 406)
    # an in-range id that is not there answers the same way
    r = host.get(f"/api/v1/challenges/{ids['c']}/submissions?phase={2**63 - 1}")
    assert r.status_code == 200 and r.json()["count"] == 0


def test_nul_in_query_and_path(ids, users):
    host = client_for(users["host"])
    native(host.get("/api/v1/challenges?q=a%00b"), 400, "invalid")
    evalai(host.get("/api/participants/participant_team?x=%00"), 400)
    native(host.get("/api/v1/submissions/%00"), 404, "not_found")
    native(worker_client(ids["worker"]).get("/api/v1/worker/files/ab%00cd"), 404, "not_found")
    evalai(host.get("/api/challenges/phase/a%00b/"), 404)


# --- every /api/ path answers errors in JSON: unknown routes, slashes, 405, 413 ---------------------------


def test_unknown_routes_and_slashes_answer_json(ids, users):
    alice = client_for(users["participant"])
    native(alice.get("/api/v1/no-such-thing"), 404, "not_found")
    native(alice.get("/api/v1/tokens/"), 404, "not_found")
    native(alice.post("/api/v1/teams/", {"name": "x"}, format="json"), 404, "not_found")
    native(Client().get("/api/v1/%ff%fe"), 404, "not_found")
    evalai(alice.get("/api/no/such/thing/"), 404)
    evalai(Client().get("/api"), 404)
    r = Client().get("/no-such-page")  # the web keeps its HTML pages
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


def test_wrong_method_is_405_in_json(ids, users):
    alice = client_for(users["participant"])
    r = alice.put("/api/v1/auth/whoami", {}, format="json")
    native(r, 405, "method_not_allowed")
    assert "GET" in r["Allow"]
    evalai(alice.delete("/api/auth/login"), 405)


def test_oversize_bodies_are_413_in_json(ids, users, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    alice = client_for(users["participant"])
    big = json.dumps({"name": "x" * 5000})
    native(post_json(alice, "/api/v1/teams", big), 413, "too_large")
    evalai(post_json(alice, "/api/participants/participant_team", big), 413)
    submit = f"/api/jobs/challenge/{ids['c']}/challenge_phase/{ids['dev']}/submission/"
    r = alice.post(submit, {"input_file": upload(b'{"dev-a0": 1}'), "method_description": "d" * 5000})
    evalai(r, 413)
    native(alice.post("/api/v1/teams", {"name": "n" * 5000}), 413, "too_large")  # multipart field
    from assay.server.teams.models import ParticipantTeam

    assert not ParticipantTeam.objects.filter(name__startswith="xxx").exists()


# --- a sweep of every write endpoint of both faces with hostile bodies: no 5xx, always JSON ----------------

HOSTILE = [
    DEEP,
    '"text"',
    "[]",
    "[{}]",
    '{"a": 1e400}',
    '{"id": 99999999999999999999999999}',
    '{"name": "\\u0000"}',
    "{}",
]
FIELD_NAMES = [
    "name", "team_name", "team_url", "username", "password", "days", "submission", "submission_status",
    "num_file_chunks", "file_name", "size", "sha256", "attempt", "output", "result", "stdout", "is_public",
    "is_baseline", "team", "accept_terms", "email", "phase", "challenge", "method_name", "job_name", "parts",
]  # fmt: skip
ODD_VALUES = [[], {}, -1, 0, 2**63 - 1, -(2**63), True, None, "x" * 3000, "1" * 19, 1.5, "../../etc/passwd"]
for _i, _value in enumerate(ODD_VALUES):
    HOSTILE.append(json.dumps({name: _value for name in FIELD_NAMES[_i % 3 :: 3]}))


def _routes(methods: tuple[str, ...] = ("post", "put", "patch", "delete")) -> list[tuple[str, str]]:
    """Every (sample path, method) of the API faces, from the URL conf (tests/api/routes.py)."""
    return sorted({(sample_path(r.pattern), m) for r in url_routes("api/") for m in r.methods if m in methods})


def test_sweep_write_endpoints_with_hostile_bodies(ids, users):
    routes = _routes()
    assert len(routes) > 40 and any(p.startswith("/api/v1/") for p, _ in routes), routes
    clients = [client_for(users["participant"]), client_for(users["host"]), worker_client(ids["worker"])]
    seen = set()
    for n, (path, method) in enumerate(routes):
        for raw in HOSTILE:
            r = clients[n % 3].generic(method.upper(), path, raw, content_type="application/json")
            assert r.status_code < 500, (method, path, raw[:80], r.status_code, r.content[:300])
            if r.status_code != 204:  # a client deleting its own token (which one depends on the route's index)
                assert r["Content-Type"].startswith("application/json"), (method, path, r.status_code, r.content[:200])
            seen.add(r.status_code)
    assert 400 in seen


HOSTILE_QUERIES = [
    "page=%00", f"phase={BIG}", f"challenge={BIG}", "page=-1", f"page={BIG}", f"page_size={BIG}", "page_size=x",
    "q=" + "x" * 5000, "order_by=%27%3BDROP", "teams=1,2,x", f"teams={BIG}", "status=%ff%fe", "key=../../etc",
]  # fmt: skip


def test_sweep_read_endpoints_with_hostile_queries(ids, users):
    routes = _routes(("get",))
    assert len(routes) > 40, routes
    clients = [client_for(users["participant"]), client_for(users["host"]), worker_client(ids["worker"]), Client()]
    for n, (path, _) in enumerate(routes):
        if path.endswith("/docs"):
            continue  # Swagger UI's HTML page
        for query in HOSTILE_QUERIES:
            r = clients[n % 4].get(f"{path}?{query}")
            assert r.status_code < 500, (path, query[:60], r.status_code, r.content[:300])
            if r.status_code >= 400:
                assert r["Content-Type"].startswith("application/json"), (path, query, r.status_code)


def test_form_bodies_on_any_method_and_bad_lengths(ids, users):
    alice = client_for(users["participant"])
    c, dev = ids["c"], ids["dev"]
    form = "application/x-www-form-urlencoded"
    path = f"/api/jobs/challenge/{c}/challenge_phase/{dev}/submission/1"
    evalai(alice.generic("PATCH", path, "is_public=true&method_name=a%00b", content_type=form), 400)
    evalai(alice.generic("PUT", f"/api/jobs/challenge/{c}/update_submission/", f"submission={BIG}", form), 400)
    native(alice.generic("POST", "/api/v1/teams", "name=a%00b", content_type=form), 400, "invalid")
    r = alice.generic("POST", "/api/v1/teams", '{"name": "x"}', content_type="application/json", CONTENT_LENGTH="x")
    native(r, 400, "invalid")


# --- the guard itself, on arbitrary JSON ------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


def _acceptable(value, key: str = "", depth: int = 1) -> bool:
    """The guard's rule, written plainly (recursively: hypothesis's values are small)."""
    from assay.server.api.guards import ID_PARAMS, INT64, LOG_FIELDS, MAX_DEPTH

    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else ((key, v) for v in value)
        return depth <= MAX_DEPTH and all(
            (isinstance(value, list) or "\x00" not in k) and _acceptable(v, k, depth + 1) for k, v in items
        )
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -INT64 - 1 <= value <= INT64
    if isinstance(value, float):
        return math.isfinite(value)
    if key not in LOG_FIELDS and ("\x00" in value or not _utf8(value)):
        return False
    return not (ID_PARAMS.fullmatch(key) and re.fullmatch(r"[-+]?\d{19,}", value) and abs(int(value)) > INT64)


def _utf8(text: str) -> bool:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == text


@given(JSON_VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_guard_accepts_or_refuses_cleanly(value):
    from assay.server.api.guards import Refused, check_json

    try:
        check_json(json.dumps(value).encode())
        accepted = True
    except Refused as r:
        assert r.status == 400 and r.message
        accepted = False
    assert accepted == (isinstance(value, dict) and _acceptable(value)), value


def test_django_error_pages_become_the_path_shape():
    """What no view answers (a crash, Django's 413 or 405 pages) is rewritten per API; JSON is left alone."""
    from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseServerError, JsonResponse

    from assay.server.api.guards import as_json_error

    r = as_json_error("/api/v1/teams", HttpResponseServerError("<h1>Server Error (500)</h1>"))
    assert r.status_code == 500 and json.loads(r.content) == {
        "error": {"code": "server_error", "message": "Internal Server Error"}
    }
    r = as_json_error("/api/jobs/submission/1/", HttpResponse("<html>", status=413))
    assert r.status_code == 413 and json.loads(r.content)["error"] == "Request Entity Too Large"
    r = as_json_error("/api/v1/teams", HttpResponseNotAllowed(["GET"]))
    assert (
        r.status_code == 405 and r["Allow"] == "GET" and json.loads(r.content)["error"]["code"] == "method_not_allowed"
    )
    kept = JsonResponse({"error": {"code": "x", "message": "y"}}, status=409)
    assert as_json_error("/api/v1/teams", kept) is kept


def test_a_worker_report_always_passes_the_guard():
    """The worker cleans what the guard refuses (NUL, lone surrogates, NaN, depth within the contract's):
    a participant's odd output or log never makes a finished evaluation's report unsendable."""
    import dataclasses

    from assay.evaluation import contract
    from assay.evaluation.contract import EvaluationOutcome
    from assay.server.api.guards import check_json
    from assay.worker.loop import _report

    nested: object = 1
    for _ in range(contract.MAX_DEPTH - 1):
        nested = [nested]
    output = {
        "result": [{"public": {"Accuracy": float("nan")}}],
        "submission_metadata": {"note\x00": "a\x00b \ud800", "deep": nested, "big": 2**63 - 1},
    }
    fields = {f.name: None for f in dataclasses.fields(EvaluationOutcome)}
    fields.update(ok=True, output=output, stdout="out\x00\ud800", stderr="err\x00", error=None, duration=1.0)
    report = _report(EvaluationOutcome(**fields))
    assert report["error"] is None, report["error"]
    body = json.dumps({"attempt": 1, **report}, allow_nan=False)
    check_json(body.encode())
    assert "\\u0000" not in body and report["output"]["submission_metadata"]["note\ufffd"] == "a\ufffdb ?"
