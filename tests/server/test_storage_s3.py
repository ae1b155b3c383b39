"""Files in an S3-compatible store (ASSAY_STORAGE_URL=s3://…), against a real S3 API server (moto's, tests/s3.py).

The settings' parsing and start-up check; the storage helpers (content-addressed writes, undo, presigned
URLs); the resumable upload with its checksums; and one submission end to end — submitted over /api/v1,
evaluated by the real worker over HTTP (it fetches the files by presigned URL), ranked, its files
downloaded — while the local MEDIA_ROOT stays empty.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tracemalloc

import httpx
import pytest
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.test import Client
from rest_framework.test import APIClient

from assay.server.storage import ContentWriter, presigned_get
from assay.server.storage_config import LOCAL_BACKEND, S3_BACKEND, default_storage_settings
from tests.factories import DEMO_BUNDLE, REPO
from tests.s3 import s3_settings

#: Reads from the live server and the S3 double: a generous timeout, as a loaded CI machine can pass 5 s
SLOW_OK = httpx.Timeout(60)


def local_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- settings --------------------------------------------------------------------------------------------


def test_local_files_by_default():
    assert default_storage_settings({}) == {"BACKEND": LOCAL_BACKEND}
    assert default_storage_settings({"ASSAY_STORAGE_URL": "  "}) == {"BACKEND": LOCAL_BACKEND}


def test_s3_url_and_options():
    env = {
        **s3_settings("http://minio:9000/", "assay-files", "prod/media"),
        "ASSAY_S3_PUBLIC_ENDPOINT_URL": "https://files.example.org",
        "ASSAY_S3_URL_SECONDS": "600",
    }
    got = default_storage_settings(env)
    assert got["BACKEND"] == S3_BACKEND
    assert got["OPTIONS"] == {
        "bucket_name": "assay-files",
        "location": "prod/media",
        "endpoint_url": "http://minio:9000",
        "public_endpoint_url": "https://files.example.org",
        "region_name": "us-east-1",
        "addressing_style": "path",
        "access_key": "assay-test",
        "secret_key": "assay-test-secret",
        "querystring_expire": 600,
    }
    # no keys of its own: boto3's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a role) decides
    assert "access_key" not in default_storage_settings({"ASSAY_STORAGE_URL": "s3://bucket"})["OPTIONS"]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ASSAY_STORAGE_URL": "https://bucket/x"}, "not an s3://bucket"),
        ({"ASSAY_STORAGE_URL": "s3://"}, "not a valid bucket name"),
        ({"ASSAY_STORAGE_URL": "s3://Upper_Case"}, "not a valid bucket name"),
        ({"ASSAY_STORAGE_URL": "s3://a..b"}, "not a valid bucket name"),
        ({"ASSAY_STORAGE_URL": "s3://key:secret@bucket"}, "credentials go in"),
        ({"ASSAY_STORAGE_URL": "s3://bucket:9000"}, "credentials go in"),
        ({"ASSAY_STORAGE_URL": "s3://bucket?region=x"}, "credentials go in"),
        ({"ASSAY_STORAGE_URL": "s3://bucket/../etc"}, "the prefix"),
        ({"ASSAY_STORAGE_URL": "s3://bucket/a b"}, "the prefix"),
        ({"ASSAY_STORAGE_URL": "file:///srv/media"}, "ASSAY_MEDIA_ROOT"),
        ({"ASSAY_STORAGE_URL": "s3://bucket", "ASSAY_S3_ENDPOINT_URL": "minio:9000"}, "ASSAY_S3_ENDPOINT_URL"),
        ({"ASSAY_STORAGE_URL": "s3://bucket", "ASSAY_S3_ADDRESSING_STYLE": "dns"}, "ASSAY_S3_ADDRESSING_STYLE"),
        ({"ASSAY_STORAGE_URL": "s3://bucket", "ASSAY_S3_ACCESS_KEY": "k"}, "set together"),
        ({"ASSAY_STORAGE_URL": "s3://bucket", "ASSAY_S3_URL_SECONDS": "9999999"}, "ASSAY_S3_URL_SECONDS"),
        ({"ASSAY_STORAGE_URL": "s3://" + "b" * 64}, "not a valid bucket name"),
    ],
)
def test_malformed_settings_are_refused_by_name(env, says):
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        default_storage_settings(env)


def test_a_malformed_url_stops_the_server_at_start(tmp_path):
    """settings.py turns the parser's refusal into ImproperlyConfigured: no command starts."""
    env = {**os.environ, "ASSAY_STORAGE_URL": "s3://Not_A_Bucket", "ASSAY_VAR_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        env={**env, "DJANGO_SETTINGS_MODULE": "assay.server.settings"},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ImproperlyConfigured: ASSAY_STORAGE_URL: 'not_a_bucket' is not a valid bucket name" in proc.stderr


def test_start_up_check_names_a_missing_bucket_or_an_unreachable_store(settings, s3_server, s3_bucket):
    from assay.server.s3_storage import check_bucket

    def check(endpoint: str, bucket: str) -> list[str]:
        settings.STORAGES = {**settings.STORAGES, "default": default_storage_settings(s3_settings(endpoint, bucket))}
        return [f"{e.id}: {e.msg}" for e in check_bucket()]

    assert check(s3_server.endpoint, s3_bucket) == []
    assert check(s3_server.endpoint, "no-such-bucket") == [
        f"assay.storage.E001: ASSAY_STORAGE_URL: the bucket 'no-such-bucket' at {s3_server.endpoint} does not exist"
    ]
    [unreachable] = check("http://127.0.0.1:9", s3_bucket)  # the discard port: nothing listens
    assert unreachable.startswith("assay.storage.E003: ASSAY_STORAGE_URL: cannot reach the bucket")


def test_the_check_runs_with_manage_py_check(s3_server, tmp_path):
    """`django-admin check` (what `migrate` and `runserver` run too) fails on a missing bucket."""
    env = {
        **os.environ,
        **s3_settings(s3_server.endpoint, "never-made"),
        "ASSAY_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "assay.server.settings",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "django", "check", "--tag", "storage"],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "assay.storage.E001" in proc.stderr and "'never-made'" in proc.stderr


# --- the storage API on S3 ---------------------------------------------------------------------------------


def test_write_read_presign_delete(s3_storage, s3_server, media):
    writer = ContentWriter()
    data = b"0123456789" * 100_000
    name, digest, size = writer.save("submissions", "../../evil name.json", data=data)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert name == f"submissions/{digest}/evil_name.json"
    assert s3_server.keys(s3_storage) == [f"media/{name}"]
    with default_storage.open(name, "rb") as fh:
        assert fh.read() == data
    assert default_storage.size(name) == len(data)
    with pytest.raises(NotImplementedError):
        default_storage.path(name)  # nothing may read media by a local path
    out = io.BytesIO()
    default_storage.download_to(name, out)  # the in-process worker's download: streamed, no temporary copy
    assert out.getvalue() == data

    url = presigned_get(name, "evil_name.json", "application/octet-stream")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    got = httpx.get(url, timeout=SLOW_OK)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"] == 'attachment; filename="evil_name.json"'
    assert httpx.get(url.split("?")[0], timeout=SLOW_OK).status_code == 403, (
        "objects are private: no read without a signature"
    )

    default_storage.delete(name)
    assert not default_storage.exists(name)
    assert s3_server.keys(s3_storage) == []
    assert local_files(media) == []


def test_content_addressed_writes_never_share_an_object(s3_storage, s3_server):
    first, second = ContentWriter(), ContentWriter()
    a, digest, _ = first.save("logos", "logo.png", data=b"png bytes")
    b, _, _ = second.save("logos", "logo.png", data=b"png bytes")
    assert a != b and a.startswith(f"logos/{digest}/") and b.startswith(f"logos/{digest}/")
    # a caller already holding these bytes writes nothing
    assert second.save("logos", "other.png", data=b"png bytes", current=a) == (a, digest, 9)
    assert len(s3_server.keys(s3_storage)) == 2

    second.rollback()  # undoing one request's write leaves the other's object alone
    assert s3_server.keys(s3_storage) == [f"media/{a}"]
    assert default_storage.open(a).read() == b"png bytes"


def test_streamed_save_and_rollback(s3_storage, s3_server, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # past one multipart part
    writer = ContentWriter()
    name, digest, size = writer.save("bundles", "big.bin", opener=lambda: big.open("rb"))
    assert size == big.stat().st_size and digest == hashlib.sha256(big.read_bytes()).hexdigest()
    with default_storage.open(name, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == digest
    writer.rollback()
    assert s3_server.keys(s3_storage) == []


def test_large_files_pass_through_bounded_memory(s3_storage, tmp_path):
    """A 64 MiB file written to and read from the store: the server's Python heap grows by far less than
    the file (boto3's defaults would read ten 8 MiB parts ahead: nearly the whole file)."""
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1024 * 1024))
    default_storage.exists("warm-up")  # the client and its service model, before measuring
    tracemalloc.start()
    try:
        with big.open("rb") as fh:
            name = default_storage.save("big/big.bin", File(fh, name="big.bin"))
        _, written = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with default_storage.open(name, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
        _, read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    assert written < 36 * 1024 * 1024 and read < 40 * 1024 * 1024, (written >> 20, read >> 20)


def test_url_signs_for_the_public_endpoint(settings, s3_server, s3_bucket):
    """Workers and browsers may reach the store at another address than the server does."""
    env = {**s3_settings(s3_server.endpoint, s3_bucket), "ASSAY_S3_PUBLIC_ENDPOINT_URL": "https://files.example.org"}
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_settings(env)}
    default_storage.save("x/y.txt", io.BytesIO(b"y"))
    assert presigned_get("x/y.txt").startswith(f"https://files.example.org/{s3_bucket}/x/y.txt?")
    assert default_storage.url("x/y.txt").startswith("https://files.example.org/")


# --- the resumable upload keeps its checksums -------------------------------------------------------------


def test_resumable_upload_into_the_store(s3_storage, s3_server, media, team, participant, demo_challenge):
    from assay.server.submissions.services.errors import SubmissionError
    from assay.server.submissions.services.submit import SubmissionFields
    from assay.server.uploads import services as uploads

    dev = demo_challenge.phases.get(codename="dev")
    body = json.dumps({f"dev-a{i}": i % 2 for i in range(10)}).encode() + b" " * 3000
    chunk = 1024
    upload = uploads.begin(
        participant, dev, "preds.json", SubmissionFields(), size=len(body), sha256=hashlib.sha256(body).hexdigest(),
        chunk_size=chunk,
    )  # fmt: skip
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    with pytest.raises(SubmissionError, match="arrived damaged"):
        uploads.put_part(upload, 1, [parts[0]], checksum=hashlib.sha256(b"other").hexdigest())
    for n, part in enumerate(parts, 1):
        uploads.put_part(upload, n, [part], checksum=hashlib.sha256(part).hexdigest())
    assert len([k for k in s3_server.keys(s3_storage) if k.startswith("media/uploads/")]) == len(parts)
    sub = uploads.finish(upload)
    assert sub.input_file_sha256 == hashlib.sha256(body).hexdigest() and sub.input_file_size == len(body)
    assert default_storage.open(sub.input_file.name).read() == body
    assert not [k for k in s3_server.keys(s3_storage) if k.startswith("media/uploads/")], "parts are cleaned up"
    assert local_files(media) == []


def test_evalai_large_upload_goes_straight_to_the_store(
    s3_storage, s3_server, media, team, participant, demo_challenge
):
    """EvalAI's --large flow as its CLI runs it: presigned part URLs of the store, PUT there with no
    credentials, the ETags sent back to finish; the server checks what the store holds and joins it there."""
    from assay.server.submissions.models import Submission
    from assay.server.uploads.models import Upload
    from tests.factories import token_for

    dev = demo_challenge.phases.get(codename="dev")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(participant)}")
    body = json.dumps({f"dev-a{i}": 1 for i in range(10)}).encode()

    def presign(chunks: int) -> dict:
        got = api.post(
            f"/api/jobs/phases/{dev.pk}/get_submission_file_presigned_url/",
            {"file_name": "preds.json", "num_file_chunks": chunks},
            format="json",
        )
        assert got.status_code == 201, got.content
        return got.json()

    def finish(answer: dict, parts: list) -> object:
        return api.post(
            f"/api/jobs/phases/{dev.pk}/finish_submission_file_upload/{answer['submission_pk']}/",
            {"parts": parts, "upload_id": answer["upload_id"]},
            format="json",
        )

    answer = presign(1)
    [url] = [u["url"] for u in answer["presigned_urls"]]
    assert url.startswith(s3_server.endpoint) and "uploadId=" in url and "X-Amz-Signature=" in url
    put = httpx.put(url, content=body, timeout=SLOW_OK)  # as evalai's requests.put(url, data=chunk): no credentials
    assert put.status_code == 200
    done = finish(answer, [{"ETag": put.headers["ETag"], "PartNumber": 1}])
    assert done.status_code == 200, done.content
    sub = Submission.objects.get(pk=answer["submission_pk"])
    assert sub.status == "submitted" and sub.input_file_sha256 == hashlib.sha256(body).hexdigest()
    assert sub.input_file.name == f"submissions/{sub.input_file_sha256}/preds.json"
    assert default_storage.open(sub.input_file.name).read() == body
    assert not [k for k in s3_server.keys(s3_storage) if k.startswith("media/uploads/")], "the joined copy is gone"

    # a part that never arrived: refused with which one, then the submission fails with the reason
    answer = presign(2)
    first = httpx.put(answer["presigned_urls"][0]["url"], content=b"x" * 10, timeout=SLOW_OK)
    refused = finish(answer, [{"ETag": first.headers["ETag"], "PartNumber": 1}])
    assert refused.status_code == 409 and "parts [2] have not arrived" in refused.content.decode()
    message = api.post(
        f"/api/jobs/phases/{dev.pk}/send_submission_message/{answer['submission_pk']}/", {}, format="json"
    )
    assert message.status_code == 400
    assert Upload.objects.get(pk=answer["upload_id"]).status == "aborted"
    assert Submission.objects.get(pk=answer["submission_pk"]).status == "failed"
    assert not [k for k in s3_server.keys(s3_storage) if k.startswith("media/uploads/")], "the parts are freed"
    assert local_files(media) == []


# --- one submission end to end, its files only in the store -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_submission_end_to_end_with_files_only_in_the_store(
    s3_storage, s3_server, media, live_server, team, participant, host, demo_challenge, admin_user, tmp_path
):
    from assay.server.leaderboards.models import LeaderboardEntry
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.tokens import create_worker_token
    from assay.worker import Worker, WorkerClient
    from tests.factories import token_for, upload

    assert any(k.startswith("media/bundles/") or "/" in k for k in s3_server.keys(s3_storage)), "the bundle's files"
    dev = demo_challenge.phases.get(codename="dev")
    perfect = (DEMO_BUNDLE.parent / "demo-submissions" / "dev_perfect.json").read_bytes()
    content = perfect + b" " * (70 * 1024)  # past the claim's inline size: the worker downloads it
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(participant)}")
    response = api.post(f"/api/v1/phases/{dev.pk}/submissions", {"input_file": upload(content)}, format="multipart")
    assert response.status_code == 201, response.content
    sid = response.json()["id"]

    _, token = create_worker_token(admin_user, "s3 e2e")
    client = WorkerClient(live_server.url, token, retry_for=10)
    answers: list[tuple[str, int, str]] = []
    client.http.event_hooks["response"].append(
        lambda r: answers.append((r.request.url.path, r.status_code, r.headers.get("location", "")))
    )
    Worker(client, tmp_path / "worker", poll_wait=1).run(max_jobs=1)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": 1.0, "F1": 1.0}
    keys = s3_server.keys(s3_storage)
    for field in (sub.input_file, sub.submission_result_file, sub.stdout_file):
        assert f"media/{field.name}" in keys

    # the worker fetched every file (submission, script, annotations) from the store by presigned URL
    downloads = [(status, location) for path, status, location in answers if "/worker/files/" in path]
    assert len(downloads) == 3 and all(s == 302 and loc.startswith(s3_server.endpoint) for s, loc in downloads)

    # the participant's result (cut for them, served by the server, read from the store)
    detail = httpx.get(
        f"{live_server.url}/api/v1/submissions/{sid}",
        headers={"Authorization": f"Bearer {token_for(participant)}"},
        timeout=SLOW_OK,
    )
    result = httpx.get(detail.json()["result_url"], timeout=SLOW_OK)
    assert result.status_code == 200 and json.loads(result.content)
    # the host's result link: a redirect to the store, the whole stored document
    hosted = httpx.get(
        f"{live_server.url}/api/v1/submissions/{sid}",
        headers={"Authorization": f"Bearer {token_for(host)}"},
        timeout=SLOW_OK,
    )
    stored = httpx.get(hosted.json()["result_url"], follow_redirects=True, timeout=SLOW_OK)
    assert (
        stored.status_code == 200 and stored.url.host == "127.0.0.1" and str(stored.url).startswith(s3_server.endpoint)
    )
    assert stored.content == default_storage.open(sub.submission_result_file.name).read()

    # the team's own file on the website: the same rule, then the store serves it
    browser = Client()
    browser.force_login(participant)
    page = browser.get(f"/submissions/{sid}/files/input")
    assert page.status_code == 302 and page["Location"].startswith(s3_server.endpoint)
    assert httpx.get(page["Location"], timeout=SLOW_OK).content == content
    stranger = Client()
    stranger.force_login(admin_user.__class__.objects.create_user("mallory", "m@example.org", "pw"))
    assert stranger.get(f"/submissions/{sid}/files/input").status_code == 404

    assert local_files(media) == [], "nothing of the challenge or the submission was written to the local folder"
