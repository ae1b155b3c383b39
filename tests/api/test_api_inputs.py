"""Malformed, hostile and oversized input to the native and compatible endpoints; throttling; tokens."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from rest_framework.test import APIClient

from tests.factories import client_for, make_user


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/auth/login", {"username": "x" * 10000, "password": "y"}),
        ("/api/v1/tokens", {"name": "", "days": -5}),
        ("/api/v1/tokens", {"name": "n", "days": 10**12}),
        ("/api/v1/teams", {"name": "\x00bad"}),
        ("/api/v1/teams", {"name": "a" * 500}),
        ("/api/v1/challenges/1/participation", {"team": "DROP TABLE", "accept_terms": "maybe"}),
        ("/api/v1/phases/1/uploads", {"file_name": "../../etc/passwd", "size": -1, "sha256": "zz"}),
        ("/api/participants/participant_team", {"team_name": ""}),
        ("/api/auth/login", {"username": "", "password": ""}),
    ],
)
def test_bad_input_is_a_clean_4xx(world, users, path, body):
    r = client_for(users["participant"]).post(path, body, format="json")
    assert 400 <= r.status_code < 500, (path, r.status_code, r.content[:300])
    assert "error" in r.json()


def test_native_error_shape(world, users):
    r = client_for(users["participant"]).get("/api/v1/submissions/999999")
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message"}
    r = APIClient().get("/api/v1/tokens")
    assert r.status_code in (401, 403) and r.json()["error"]["message"]


def test_expired_and_revoked_tokens_say_so(world, users, settings):
    """The rows change behind the server's back (as another process would): no token cache here, the
    bound it puts on that is tested in tests/server/accounts/test_token_cache.py."""
    import datetime as dt

    from django.utils import timezone

    from assay.server.accounts.models import ApiToken
    from assay.server.accounts.tokens import create_token

    settings.TOKEN_CACHE_SECONDS = 0
    row, token = create_token(users["participant"], "t", 1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/auth/whoami").json()["username"] == "alice"
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    r = client.get("/api/v1/auth/whoami")
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    assert client.get("/api/challenges/challenge/all/all/all").json() == {} or True
    r = client.get("/api/participants/participant_team")
    assert r.json()["detail"] == "Token has expired"
    ApiToken.objects.filter(pk=row.pk).update(expires_at=None, revoked_at=timezone.now())
    assert "revoked" in client.get("/api/v1/auth/whoami").json()["error"]["message"]
    assert ApiToken.objects.get(pk=row.pk).token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_login_and_submit_are_throttled(world, users, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "3/min", "submit": "2/min"})
    cache.clear()
    anon = APIClient()
    codes = [anon.post("/api/v1/auth/login", {"username": "alice", "password": "bad"}).status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[-1] == 429
    codes = [anon.post("/api/auth/login", {"username": "alice", "password": "bad"}).status_code for _ in range(2)]
    assert 429 in codes  # the same budget, whichever API
    alice = client_for(users["participant"])
    dev = world["challenge"].phases.get(codename="dev")
    codes = []
    for _ in range(3):
        f = io.BytesIO(b'{"dev-a0": 1}')
        f.name = "p.json"
        codes.append(
            alice.post(f"/api/v1/phases/{dev.pk}/submissions", {"input_file": f}, format="multipart").status_code
        )
    assert codes[-1] == 429


def test_oversized_upload_part_is_refused(world, users):
    alice = client_for(users["participant"])
    dev = world["challenge"].phases.get(codename="dev")
    body = {"file_name": "p.json", "size": 2048, "sha256": "0" * 64, "chunk_size": 1024}
    up = alice.post(f"/api/v1/phases/{dev.pk}/uploads", body, format="json").json()
    r = alice.put(f"/api/v1/uploads/{up['id']}/parts/1", b"x" * 5000, content_type="application/octet-stream")
    assert r.status_code == 413
    r = alice.put(f"/api/v1/uploads/{up['id']}/parts/9", b"x", content_type="application/octet-stream")
    assert r.status_code == 400
    bad = alice.put(f"/api/v1/uploads/{up['id']}/parts/1", b"x" * 1024, content_type="application/octet-stream",
                    HTTP_X_CHECKSUM_SHA256="0" * 64)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "checksum_mismatch"
    assert client_for(users["other_participant"]).get(f"/api/v1/uploads/{up['id']}").status_code == 404


def test_resumable_upload_with_checksums(world, users):
    alice = client_for(users["participant"])
    dev = world["challenge"].phases.get(codename="dev")
    data = b'{"dev-a0": 1, "pad": "' + b"x" * 3000 + b'"}'
    body = {"file_name": "p.json", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "chunk_size": 1024}
    up = alice.post(f"/api/v1/phases/{dev.pk}/uploads", body, format="json").json()
    assert up["part_count"] == 3 and up["missing_parts"] == [1, 2, 3]
    for n in (3, 1):
        alice.put(
            f"/api/v1/uploads/{up['id']}/parts/{n}",
            data[(n - 1) * 1024 : n * 1024],
            content_type="application/octet-stream",
        )
    r = alice.post(f"/api/v1/uploads/{up['id']}/complete")
    assert r.status_code == 409 and "2" in r.json()["error"]["message"]
    assert alice.get(f"/api/v1/uploads/{up['id']}").json()["missing_parts"] == [2]
    alice.put(f"/api/v1/uploads/{up['id']}/parts/2", data[1024:2048], content_type="application/octet-stream")
    r = alice.post(f"/api/v1/uploads/{up['id']}/complete")
    assert r.status_code == 200 and r.json()["submission"]["status"] == "submitted"
    assert r.json()["submission"]["input_file_sha256"] == hashlib.sha256(data).hexdigest()


def test_github_endpoints(world, users, tmp_path):
    from tests.factories import DEMO_BUNDLE

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(DEMO_BUNDLE.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(DEMO_BUNDLE).as_posix())
    host = client_for(users["host"])
    team = world["host_team"].pk
    base = f"/api/challenges/challenge/challenge_host_team/{team}"

    def zipped(data=None):
        f = io.BytesIO(data or buf.getvalue())
        f.name = "challenge_config.zip"
        return f

    r = host.post(f"{base}/validate_challenge_config/", {"zip_configuration": zipped()}, format="multipart")
    assert r.status_code == 200 and "Success" in r.json()
    r = host.post(f"{base}/validate_challenge_config/", {"zip_configuration": zipped(b"not a zip")}, format="multipart")
    assert r.status_code == 400 and r.json()["error"]
    body = {"zip_configuration": zipped(), "GITHUB_REPOSITORY": "me/my-challenge"}
    r = host.post(f"{base}/create_or_update_github_challenge/", body, format="multipart")
    assert r.status_code == 201, r.content
    body = {"zip_configuration": zipped(), "GITHUB_REPOSITORY": "me/my-challenge"}
    r2 = host.post(f"{base}/create_or_update_github_challenge/", body, format="multipart")
    assert r2.status_code == 200 and r2.json()["challenge_id"] == r.json()["challenge_id"]
    other = client_for(users["other_host"])
    r = other.post(f"{base}/create_or_update_github_challenge/", {"zip_configuration": zipped()}, format="multipart")
    assert r.status_code == 406


def test_starters_remote_loop(world, users):
    """EvalAI-Starters' remote_challenge_evaluation calls, in its order, with a host's token."""
    import json

    from assay.server.challenges.models import Challenge
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from tests.factories import upload

    challenge = world["challenge"]
    Challenge.objects.filter(pk=challenge.pk).update(remote_evaluation=True)
    challenge.refresh_from_db()
    dev = challenge.phases.get(codename="dev")
    sub = submit(users["participant"], dev, upload(), "p.json", SubmissionFields())
    host = client_for(users["host"])
    queue = f"challenge-{challenge.pk}"
    assert host.get(f"/api/challenges/challenge/queues/{queue}/").json()["id"] == challenge.pk
    message = host.get(f"/api/jobs/challenge/queues/{queue}/").json()
    assert message["body"]["submission_pk"] == sub.pk
    fetched = host.get(f"/api/jobs/submission/{sub.pk}").json()
    assert fetched["status"] == "submitted" and fetched["input_file"].startswith("http")
    assert APIClient().get(fetched["input_file"]).status_code == 200  # the signed URL is the credential
    r = host.patch(f"/api/jobs/challenge/{challenge.pk}/update_submission/",
                   {"submission": sub.pk, "submission_status": "running"}, format="multipart")  # fmt: skip
    assert r.json()["status"] == "running"
    assert host.get(f"/api/jobs/challenge/queues/{queue}/").json()["body"] is None
    bad = [{"split": "public", "show_to_participant": True, "accuracies": {"Nope": 1}}]
    r = host.put(f"/api/jobs/challenge/{challenge.pk}/update_submission/",
                 {"challenge_phase": dev.pk, "submission": sub.pk, "submission_status": "FINISHED",
                  "result": json.dumps(bad), "stdout": "", "stderr": "", "metadata": ""}, format="multipart")  # fmt: skip  # noqa: E501
    assert r.status_code == 400 and "Nope" in r.json()["error"]
    good = [{"split": "public", "show_to_participant": True, "accuracies": {"Accuracy": 0.5, "F1": 0.4}}]
    r = host.put(f"/api/jobs/challenge/{challenge.pk}/update_submission/",
                 {"challenge_phase": dev.pk, "submission": sub.pk, "submission_status": "FINISHED",
                  "result": json.dumps(good), "stdout": "done", "stderr": "", "metadata": "{}"}, format="multipart")  # fmt: skip  # noqa: E501
    assert r.status_code == 200, r.content
    assert Submission.objects.get(pk=sub.pk).status == "finished"
    assert host.post(f"/api/jobs/queues/{queue}/", {"receipt_handle": message["receipt_handle"]}).status_code == 200
    # EvalAI's own remote worker sends evaluate()["result"] as it is: accepted too
    sub2 = submit(users["participant"], dev, upload(), "p.json", SubmissionFields())
    r = host.put(f"/api/jobs/challenge/{challenge.pk}/update_submission/",
                 {"submission": sub2.pk, "submission_status": "finished",
                  "result": json.dumps([{"public": {"Accuracy": 1, "F1": 1}}])}, format="multipart")  # fmt: skip
    assert r.status_code == 200 and Submission.objects.get(pk=sub2.pk).status == "finished"
    # another host, or a participant, cannot touch the queue
    for user in ("other_host", "participant"):
        assert client_for(users[user]).get(f"/api/jobs/challenge/queues/{queue}/").status_code == 406


def test_login_flow_of_evalai(world, users):
    anon = APIClient()
    token = anon.post("/api/auth/login", {"username": "alice", "password": "pw"}).json()["token"]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    long = c.get("/api/accounts/user/get_auth_token").json()
    assert long["token"].startswith("ap_") and long["expires_at"]
    assert c.get("/api/participants/participant_team").json()["detail"] == "Invalid token"  # login token swapped
    make_user("zed")
