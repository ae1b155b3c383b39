"""The OpenAPI schema of /api/v1 says what the views answer, and its docs page works without internet."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

# Endpoints that answer DRF pages ({count, next, previous, results}) from ApiView.paginate.
PAGED = [
    ("/api/v1/tokens", "get"),
    ("/api/v1/challenges", "get"),
    ("/api/v1/phases/{phase_id}/submissions", "get"),
    ("/api/v1/me/submissions", "get"),
    ("/api/v1/teams", "get"),
    ("/api/v1/host-teams", "get"),
    ("/api/v1/teams/{team_id}/invitations", "get"),
    ("/api/v1/host-teams/{team_id}/invitations", "get"),
    ("/api/v1/challenges/{challenge_id}/phases", "get"),
    ("/api/v1/challenges/{challenge_id}/splits", "get"),
    ("/api/v1/challenges/{challenge_id}/phase-splits", "get"),
    ("/api/v1/challenges/{challenge_id}/worker-tokens", "get"),
    ("/api/v1/challenges/{challenge_id}/submissions", "get"),
    ("/api/v1/challenges/{challenge_id}/auditors", "get"),
    ("/api/v1/submissions/{submission_id}/audit/reviews", "get"),
]
# Answers once documented as free-form objects: each is a component with its fields now.
DESCRIBED = [
    ("/api/v1/auth/login", "post", "201", "LoginOut", {"token", "expires_at", "user"}),
    ("/api/v1/auth/whoami", "get", "200", "WhoamiOut", {"username", "host_teams", "participant_teams"}),
    ("/api/v1/tokens", "post", "201", "NewTokenOut", {"token", "prefix", "expires_at"}),
    ("/api/v1/worker/heartbeat", "post", "200", "HeartbeatSeveralOut", {"jobs"}),
]


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return yaml.safe_load(Client().get("/api/v1/schema").content)


def test_generating_the_schema_gives_no_warning_or_error(tmp_path):
    """drf-spectacular's warnings (duplicate component names, views it cannot describe) fail this."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/v1/worker-tokens/{token_id}" in yaml.safe_load(out.read_text())["paths"]


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize(("path", "method"), PAGED)
def test_paginated_lists_are_documented_as_pages(schema, path, method):
    operation = schema["paths"][path][method]
    body = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert body["type"] == "object"
    assert {"count", "next", "previous", "results"} <= set(body["properties"])
    assert body["properties"]["results"]["type"] == "array"
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} >= {"page", "page_size"}


@pytest.mark.parametrize(("path", "method", "status", "component", "fields"), DESCRIBED)
def test_answers_are_described_by_their_serializer(schema, path, method, status, component, fields):
    ref = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] == component
    assert fields <= set(schema["components"]["schemas"][component]["properties"])


def test_the_hosts_submission_list_is_pages_of_the_one_submission_shape(schema):
    page = _resolve(schema, _json_200(schema, "/api/v1/challenges/{challenge_id}/submissions"))
    assert page["properties"]["results"]["items"]["$ref"].endswith("/SubmissionOut")
    mine = _resolve(schema, _json_200(schema, "/api/v1/phases/{phase_id}/submissions"))
    assert mine["properties"]["results"]["items"] == page["properties"]["results"]["items"]


def _json_200(schema: dict, path: str) -> dict:
    return schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_one_component_per_name_and_the_worker_token_routes_described(schema):
    components = schema["components"]["schemas"]
    assert "id" in components["TokenOut"]["properties"] and "expires_at" in components["TokenOut"]["properties"]
    assert "queue_name" in components["WorkerTokenOut"]["properties"]  # the worker token's own component
    assert "queue_name" not in components["TokenOut"]["properties"]
    assert "204" in schema["paths"]["/api/v1/worker-tokens/{token_id}"]["delete"]["responses"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.django_db
def test_the_docs_page_references_only_our_own_assets_and_each_is_served():
    client = Client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    parser = _Assets()
    parser.feed(html)
    assert any(u.endswith("swagger-ui-bundle.js") for u in parser.urls), parser.urls
    assert any(u.endswith("swagger-ui.css") for u in parser.urls), parser.urls
    # no host anywhere in the page: not in tags, not in the inline script (a CDN would need one)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", html), re.findall(r"(?:https?:)?//[^\s\"']+", html)
    for url in parser.urls:
        assert not urlsplit(url).netloc, url
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content if response.streaming else [response.content]), url


def test_my_submissions_documents_its_filters(schema):
    operation = schema["paths"]["/api/v1/me/submissions"]["get"]
    params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert {"challenge", "phase", "status", "page", "page_size"} <= set(params)
    assert params["challenge"]["schema"]["type"] == params["phase"]["schema"]["type"] == "integer"
    assert "failed" in params["status"]["schema"]["enum"] and "finished" in params["status"]["schema"]["enum"]
