"""The server side of the ``assay`` command: admin import-bundle, exit codes, JSON output."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from assay.cli.main import app
from assay.server.challenges.models import Challenge
from tests.factories import DEMO_BUNDLE, stored_files

pytestmark = pytest.mark.django_db(transaction=True)
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_import_bundle_creates_then_updates(media, host_team):
    first = invoke("admin", "import-bundle", DEMO_BUNDLE, "--host-team", host_team.name, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["imported"] and report["created"]
    again = invoke(
        "admin",
        "import-bundle",
        DEMO_BUNDLE,
        "--host-team",
        host_team.name,
        "--challenge",
        report["challenge_id"],
    )
    assert again.exit_code == 0, again.output
    assert "updated" in again.output
    assert Challenge.objects.count() == 1


def test_unknown_host_team_is_refused_with_a_hint(media):
    result = invoke("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "nobody")
    assert result.exit_code == 1
    assert "--create-team" in result.output
    assert stored_files(media) == set()


def test_create_team_needs_a_user(media, host):
    result = invoke("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "new team", "--create-team")
    assert result.exit_code == 1 and "--user" in result.output
    ok = invoke("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "new team", "--create-team", "--user", "host1")
    assert ok.exit_code == 0, ok.output
    assert Challenge.objects.get().host_team.name == "new team"


def test_invalid_bundle_prints_problems_and_exits_1(media, host_team, tmp_path):
    bad = shutil.copytree(DEMO_BUNDLE, tmp_path / "bad")
    (bad / "templates" / "description.html").unlink()
    result = invoke("admin", "import-bundle", bad, "--host-team", host_team.name, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    assert problems[0]["code"] == "file_not_found" and problems[0]["key"] == "description"
    assert problems[0]["line"] == 5  # the line of `description:` in the demo config
    assert Challenge.objects.count() == 0 and stored_files(media) == set()


def test_serve_turns_nagle_off_for_its_connections(monkeypatch):
    """A 40 ms delayed-ACK stall per request otherwise (bench/: overhead and api rows)."""
    import socket
    import threading

    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    from assay.server.commands import send_small_writes_at_once

    monkeypatch.setattr(WSGIRequestHandler, "disable_nagle_algorithm", False)
    send_small_writes_at_once()
    seen: list[int] = []

    class Probe(WSGIRequestHandler):
        def handle(self) -> None:
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = WSGIServer(("127.0.0.1", 0), Probe)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    with socket.create_connection(server.server_address):
        thread.join(5)
    server.server_close()
    assert seen and seen[0] != 0


def test_serve_parses_a_multipart_requests_headers_as_headers_only(monkeypatch):
    """The header block of a multipart request gives the same headers without a MIME parse of the body (the
    e-mail parser compiled a regular expression per boundary, one per request); the body reaches the app whole."""
    import http.client
    import io
    import threading

    import httpx
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    from assay.server.commands import RequestHeaders, parse_headers_only

    block = (
        b"Host: 127.0.0.1\r\nAuthorization: Bearer ap_x\r\nContent-Length: 120\r\n"
        b"Content-Type: multipart/form-data; boundary=0a1b2c3d\r\nX-Two: a\r\nX-Two: b\r\n\r\n"
    )
    plain = http.client.parse_headers(io.BytesIO(block))
    ours = http.client.parse_headers(io.BytesIO(block), _class=RequestHeaders)
    assert ours.items() == plain.items() and ours.get_all("X-Two") == ["a", "b"]
    assert ours.get_content_type() == plain.get_content_type() == "multipart/form-data"
    assert ours.get_param("boundary") == "0a1b2c3d" and not ours.defects

    monkeypatch.setattr(WSGIRequestHandler, "MessageClass", WSGIRequestHandler.MessageClass)
    parse_headers_only()
    seen: dict = {}

    def app(environ, start_response):
        seen["type"] = environ["CONTENT_TYPE"]
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(app)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    host, port = server.server_address
    response = httpx.post(f"http://{host}:{port}/x", files={"input_file": ("p.json", b'{"score": 1}')}, timeout=10)
    thread.join(5)
    server.server_close()
    assert response.status_code == 200 and response.text == "ok"
    assert seen["type"].startswith("multipart/form-data; boundary=")
    assert b'{"score": 1}' in seen["body"] and seen["body"].endswith(b"--\r\n")
