"""The /api/v1 face of data packages (issue 16 item 2): the whole on-request flow over HTTP (a host publishes,
a participant asks, the host approves, the participant downloads the inputs streamed and never the labels,
the host reads the log), and malformed, hostile and oversized bodies answered with a clear 4xx."""

from __future__ import annotations

import pytest

from assay.server.data_packages.models import DownloadRecord
from tests.factories import client_for, make_user, upload

from .archives import FILES, INPUTS, bomb_zip, named_zip, package_zip

pytestmark = pytest.mark.django_db
BASE = "/api/v1/data-packages"


@pytest.fixture
def people(host, host_team, participant):
    return {"host": host, "participant": participant, "stranger": make_user("stranger"), "team": host_team}


def create(host_client, team, slug: str = "retina", access: str = "on_request"):
    body = {"slug": slug, "title": "Retina set", "access": access, "host_team": team.pk, "card": {"licence": "CC0"}}
    return host_client.post(BASE, body, format="json")


def publish(host_client, slug: str = "retina", data: bytes | None = None, notes: str = "v1"):
    archive = upload(package_zip() if data is None else data, "v.zip")
    return host_client.post(f"{BASE}/{slug}/versions", {"archive": archive, "notes": notes}, format="multipart")


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    return response.json()["error"]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_on_request_flow_over_http(people, media):
    host, alice = client_for(people["host"]), client_for(people["participant"])
    made = create(host, people["team"])
    assert made.status_code == 201, made.content
    assert made.json() | {"created_at": None} == made.json() | {
        "slug": "retina", "access": "on_request", "licence": "CC0", "latest_version": None, "is_owner": True,
        "has_access": True, "request_status": None, "created_at": None,
    }  # fmt: skip
    published = publish(host)
    assert published.status_code == 201, published.content
    assert published.json()["number"] == 1 and len(published.json()["files"]) == len(FILES)

    card = alice.get(f"{BASE}/retina").json()
    assert (card["latest_version"], card["is_owner"], card["has_access"]) == (1, False, False)
    listed = alice.get(f"{BASE}/retina/versions/1").json()
    assert {f["path"] for f in listed["files"]} == set(INPUTS)  # no labels, no metadata
    url = next(f["download_url"] for f in listed["files"] if f["path"] == "inputs/case-1.json")
    assert url.endswith(f"{BASE}/retina/versions/1/files/inputs/case-1.json")
    assert error(alice.get(url), 403)["code"] == "forbidden"

    asked = alice.post(f"{BASE}/retina/access-requests", {"reason": "benchmarking"}, format="json")
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    assert [r["user"] for r in host.get(f"{BASE}/retina/access-requests").json()["results"]] == ["alice"]
    decided = host.post(f"{BASE}/retina/access-requests/{asked.json()['id']}", {"approve": True}, format="json")
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    card = alice.get(f"{BASE}/retina").json()
    assert (card["request_status"], card["has_access"], card["is_owner"]) == ("approved", True, False)

    got = alice.get(url, HTTP_USER_AGENT="assay-cli/1.0")
    assert got.status_code == 200 and got.streaming
    assert body_of(got) == FILES["inputs/case-1.json"]
    assert got["Content-Length"] == str(len(FILES["inputs/case-1.json"]))
    assert "attachment" in got["Content-Disposition"] and got["X-Content-Type-Options"] == "nosniff"
    for path in ("labels/test.json", "metadata/cases.csv"):
        refused = alice.get(f"{BASE}/retina/versions/1/files/{path}")
        assert error(refused, 404)["code"] == "not_found" and b"cat" not in refused.content
    assert error(alice.get(f"{BASE}/retina/downloads"), 403)["code"] == "forbidden"

    log = host.get(f"{BASE}/retina/downloads").json()["results"]
    assert [(r["user"], r["path"], r["role"], r["version"], r["via"]) for r in log] == [
        ("alice", "inputs/case-1.json", "inputs", 1, "cli")
    ]
    assert log[0]["client_address"] == "127.0.0.1"
    assert DownloadRecord.objects.count() == 1


def test_anonymous_visitors_read_and_download_public_packages_only(people, media):
    host = client_for(people["host"])
    assert create(host, people["team"], "open", "public").status_code == 201
    assert create(host, people["team"], "asked", "on_request").status_code == 201
    for slug in ("open", "asked"):
        assert publish(host, slug).status_code == 201
    anonymous = client_for()
    assert [p["slug"] for p in anonymous.get(BASE).json()["results"]] == ["open"]
    assert body_of(anonymous.get(f"{BASE}/open/versions/1/files/inputs/case-1.json")) == FILES["inputs/case-1.json"]
    assert error(anonymous.get(f"{BASE}/open/versions/1/files/labels/test.json"), 404)
    assert error(anonymous.get(f"{BASE}/asked"), 404)
    assert error(anonymous.post(f"{BASE}/open/access-requests", {"reason": "x"}, format="json"), 401)
    assert DownloadRecord.objects.get().user is None


def test_a_presigned_url_is_a_redirect(people, media, monkeypatch):
    from assay.server.data_packages.services import downloads

    host = client_for(people["host"])
    create(host, people["team"], "open", "public")
    publish(host, "open")
    monkeypatch.setattr(downloads, "presigned_get", lambda *a, **k: "https://store.example/signed?x=1")
    got = client_for(people["stranger"]).get(f"{BASE}/open/versions/1/files/inputs/case-1.json")
    assert (got.status_code, got["Location"]) == (302, "https://store.example/signed?x=1")
    assert DownloadRecord.objects.get().user == people["stranger"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "T", "host_team": 1}, "slug"),
        ({"slug": "x", "title": "T", "access": "everyone"}, "access"),
        ({"slug": "x", "title": "T", "host_team": "one"}, "host_team"),
        ({"slug": "x", "title": "T", "card": "not an object"}, "card"),
        ({"slug": "x", "title": "T", "card": {"licence": 5}}, "card"),
        ({"slug": "x", "title": "T" * 201}, "title"),
        ({"slug": "x" * 101, "title": "T"}, "slug"),
    ],
)
def test_create_refuses_malformed_fields(people, body, field):
    response = client_for(people["host"]).post(BASE, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.content.decode()


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ([1, 2], 400, "JSON object"),
        ({"slug": "Bad Slug", "title": "T"}, 400, "slug"),
        ({"slug": "ok", "title": "T", "card": {"sauce": "x"}}, 400, "unknown card fields: sauce"),
        ({"slug": "ok", "title": "T", "card": {"source": "x" * 20_001}}, 400, "at most 20000"),
        ({"slug": "ok", "title": "a\u0000b"}, 400, ""),
    ],
)
def test_create_refuses_bad_values_clearly(people, body, status, text):
    response = client_for(people["host"]).post(BASE, body, format="json")
    assert response.status_code == status, response.content
    assert text in response.content.decode()


def test_patch_refuses_unknown_fields_and_wrong_types(people):
    host = client_for(people["host"])
    create(host, people["team"])
    for body, text in [
        ({"slug": "renamed"}, "unknown card fields: slug"),
        ({"host_team": 2}, "unknown card fields: host_team"),
        ({"access": "nobody"}, "access"),
        ({"card": ["x"]}, "card"),
        ({"title": ""}, "title"),
        ({"limitations": "x" * 20_001}, "at most 20000"),
    ]:
        response = host.patch(f"{BASE}/retina", body, format="json")
        assert response.status_code == 400 and text in response.content.decode(), (body, response.content)
    changed = host.patch(f"{BASE}/retina", {"limitations": "One site", "access": "public"}, format="json").json()
    assert (changed["limitations"], changed["access"], changed["slug"]) == ("One site", "public", "retina")


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        (b"not a zip", 400, "not a readable zip"),
        (named_zip("../escape.json"), 400, "outside the archive"),
        (named_zip("answers.json"), 400, "'answers.json' is outside inputs/, labels/, metadata/"),
        (bomb_zip(), 400, "zip bomb"),
    ],
    ids=["not-a-zip", "zip-slip", "root-file", "zip-bomb"],
)
def test_publishing_refuses_hostile_archives(people, media, data, status, text):
    host = client_for(people["host"])
    create(host, people["team"])
    refused = publish(host, data=data)
    assert error(refused, status)["code"] == "archive_refused"
    assert text in refused.json()["error"]["message"]
    assert host.get(f"{BASE}/retina/versions").json()["count"] == 0


def test_publishing_refuses_a_missing_or_oversized_archive(people, media, settings):
    host = client_for(people["host"])
    create(host, people["team"])
    missing = host.post(f"{BASE}/retina/versions", {"notes": "no file"}, format="multipart")
    assert missing.status_code == 400 and "archive" in missing.content.decode()
    settings.DATA_PACKAGE_MAX_BYTES = 100
    assert error(publish(host), 413)["code"] == "archive_refused"
    settings.DATA_PACKAGE_MAX_BYTES = 10**9
    assert "notes is 20001 characters" in error(publish(host, notes="n" * 20_001), 400)["message"]


def test_decisions_refuse_malformed_bodies_and_other_packages_requests(people, media):
    host, alice = client_for(people["host"]), client_for(people["participant"])
    create(host, people["team"])
    create(host, people["team"], "other")
    req = alice.post(f"{BASE}/retina/access-requests", {"reason": "research"}, format="json").json()
    for body in ({}, {"approve": "perhaps"}, {"approve": True, "note": "x" * 5001}, []):
        response = host.post(f"{BASE}/retina/access-requests/{req['id']}", body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert error(host.post(f"{BASE}/other/access-requests/{req['id']}", {"approve": True}, format="json"), 404)
    assert error(host.post(f"{BASE}/retina/access-requests/999999", {"approve": True}, format="json"), 404)
    for body in ({}, {"reason": ""}, {"reason": "x" * 5001}, {"reason": 5}):
        response = client_for(people["stranger"]).post(f"{BASE}/retina/access-requests", body, format="json")
        assert response.status_code == 400, (body, response.content)
    revoked = host.post(f"{BASE}/retina/access-requests/{req['id']}", {"approve": False, "note": "no"}, format="json")
    assert revoked.json()["status"] == "denied"


def test_file_paths_cannot_climb_out_of_the_version(people, media):
    host = client_for(people["host"])
    create(host, people["team"], "open", "public")
    publish(host, "open")
    stranger = client_for(people["stranger"])
    for path in ("inputs/../labels/test.json", "../../../etc/passwd", "inputs/%2e%2e/labels/test.json", "labels"):
        response = stranger.get(f"{BASE}/open/versions/1/files/{path}")
        assert response.status_code == 404, (path, response.status_code)
    assert error(stranger.get(f"{BASE}/open/versions/2/files/inputs/case-1.json"), 404)
    assert error(stranger.get(f"{BASE}/open/versions/2"), 404)
    assert not DownloadRecord.objects.exists()
