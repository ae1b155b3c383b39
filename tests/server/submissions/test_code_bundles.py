"""Code bundles on the server: a static-dataset phase takes a .zip with run.sh or main.py (docs/containers.md).

Checked at upload without unpacking it; its job carries ``"image": {"code": …}`` and, needing no Docker,
is claimed by workers without containers too. The worker side runs in tests/worker/test_code_bundle_jobs.py.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile

import pytest

from assay.server.submissions.models import Submission
from assay.server.submissions.services import images, jobs, queue
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields
from assay.server.uploads import services as uploads
from tests.server.images import fake_image_tarball
from tests.zips import patched_entry

from . import test_container_submissions as containers
from .test_container_submissions import claim, container_bundle, dev, imported, push

# The docker-based demo challenge and a worker's API client, as the container-submission tests make them.
static_challenge = containers.static_challenge
worker_client = containers.worker_client

pytestmark = pytest.mark.django_db


def zipped(files: dict[str, bytes | str], *, links: dict[str, str] | None = None, fifo: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
        if fifo:
            info = zipfile.ZipInfo(fifo)
            info.external_attr = (stat.S_IFIFO | 0o644) << 16
            zf.writestr(info, b"")
    return buf.getvalue()


def zeros(size: int) -> bytes:
    """A zip whose run.sh sits next to ``size`` bytes of zeros, streamed (never held in memory)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("run.sh", "true")
        with zf.open("weights.bin", "w", force_zip64=True) as out:
            block = bytes(1024**2)
            for _ in range(size // len(block)):
                out.write(block)
    return buf.getvalue()


GOOD = {"run.sh": "python3 predict.py", "predict.py": "print(1)", "model/weights.bin": b"\x00" * 100}


@pytest.mark.parametrize("files", [GOOD, {"main.py": "import model", "model.py": ""}], ids=["run.sh", "main.py"])
def test_a_code_bundle_is_accepted_and_its_job_names_the_code(static_challenge, participant, media, files):
    sub = push(participant, dev(static_challenge), zipped(files), "model.zip")
    assert sub.status == "submitted" and sub.image_digest == ""
    block = jobs.container_block(sub)
    assert block is not None and block["kind"] == "static_dataset" and block["image_digest"] == ""
    assert block["image"] == {"code": jobs.job_payload(sub)["submission_file"]}
    assert block["image"]["code"]["sha256"] == sub.input_file_sha256 and block["test_inputs"] is not None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (lambda: zipped({"predict.py": "print(1)"}), "has no run.sh or main.py at its root"),
        (lambda: zipped({"model/run.sh": "true"}), "zip the folder's contents, not the folder"),
        (lambda: zipped({}), "has no run.sh or main.py"),
        (lambda: zipped({"run.sh": "true", "../evil.sh": "x"}), "points outside the archive ('..')"),
        (lambda: zipped({"run.sh": "true", "model\\..\\..\\evil.sh": "x"}), "points outside the archive ('..')"),
        (lambda: zipped({"run.sh": "true", "/etc/cron.d/x": "x"}), "is an absolute path"),
        (lambda: zipped({"run.sh": "true", "C:/evil.sh": "x"}), "is an absolute path"),
        (lambda: zipped({"run.sh": "true", "model/a\x01.bin": "x"}), "holds a control character"),
        (lambda: zipped({"run.sh": "true"}, fifo="model/pipe"), "is not a regular file"),
        (lambda: zipped({"run.sh": "true"}, links={"data": "/etc/passwd"}), "is a symbolic link"),
        (lambda: zipped({"predict.py": "1"}, links={"run.sh": "/bin/sh"}), "is a symbolic link"),
        (lambda: patched_entry(zipped(GOOD), "predict.py", flag=1), "'predict.py' is encrypted"),
        (lambda: patched_entry(zipped(GOOD), "predict.py", method=9), "uses compression method 9"),
        (lambda: zeros(11 * 1024**2), "more than the phase's limit of 10485760"),
        (lambda: b"PK\x03\x04 not really a zip", "not a readable zip"),
        (lambda: b"", "not a readable zip"),
    ],
    ids=[
        "no-entry-point",
        "nested",
        "empty",
        "traversal",
        "backslash-traversal",
        "absolute",
        "drive-letter",
        "control-char",
        "fifo",
        "symlink",
        "linked-entry",
        "encrypted",
        "deflate64",
        "bomb",
        "garbage",
        "0b",
    ],
)
def test_bad_code_bundles_are_refused_at_once_and_leave_nothing(static_challenge, participant, media, data, words):
    before = {p for p in media.rglob("*") if p.is_file()}
    with pytest.raises(SubmissionError) as exc:
        push(participant, dev(static_challenge), data(), "model.zip")
    assert exc.value.code == "code_bundle_refused" and words in exc.value.message, exc.value.message
    assert not Submission.objects.exists()
    assert {p for p in media.rglob("*") if p.is_file()} == before


def test_a_bundle_that_unpacks_to_a_hundred_times_its_size_is_a_bomb(static_challenge):
    data = zeros(300 * 1024**2)
    with pytest.raises(SubmissionError) as exc:
        images.check_code_bundle(io.BytesIO(data), max_bytes=40 * 1024**3)
    assert "more than 100 times its size (a zip bomb?)" in exc.value.message
    images.check_code_bundle(io.BytesIO(zeros(20 * 1024**2)), max_bytes=40 * 1024**3)  # small: allowed


def test_the_phase_says_it_takes_code_bundles(static_challenge, participant):
    with pytest.raises(SubmissionError) as exc:
        push(participant, dev(static_challenge), b"{}", "predictions.json")
    assert exc.value.code == "file_type_not_allowed"
    assert "or a code bundle (.zip with run.sh or main.py at its root)" in exc.value.message


def test_environment_phases_take_no_code_bundles(tmp_path, media, host_team):
    challenge = imported(container_bundle(tmp_path, static=False), host_team)
    assert not images.allowed_name("agent.zip", challenge) and images.allowed_name("agent.tar", challenge)
    assert "code bundle" not in images.describe_accepted(challenge)
    with pytest.raises(SubmissionError) as exc:
        images.check_submission(dev(challenge), io.BytesIO(zipped(GOOD)), "agent.zip", team_id=1)
    assert exc.value.code == "code_bundle_refused" and "only in static-dataset phases" in exc.value.message


def test_resumable_upload_checks_the_whole_bundle(static_challenge, participant, media):
    phase = dev(static_challenge)
    bad = zipped({"notes.txt": "no entry point"})
    up = uploads.begin(participant, phase, "model.zip", SubmissionFields(), size=len(bad))
    uploads.put_part(up, 1, [bad])
    with pytest.raises(SubmissionError) as exc:
        uploads.finish(up)
    assert exc.value.code == "code_bundle_refused"
    refused = Submission.objects.get(pk=up.submission_id)
    assert refused.status == "failed" and "no run.sh or main.py" in refused.failure_reason
    good = zipped(GOOD)
    up = uploads.begin(participant, phase, "model.zip", SubmissionFields(), size=len(good))
    uploads.put_part(up, 1, [good])
    sub = uploads.finish(up)
    assert sub.status == "submitted" and sub.image_digest == "" and "code" in jobs.container_block(sub)["image"]


def test_workers_without_containers_claim_code_bundles_but_not_images(
    static_challenge,
    participant,
    team,
    worker_client,
    settings,
    monkeypatch,
):
    monkeypatch.setattr(images, "resolve_digest", lambda reference: "sha256:" + "b" * 64)
    monkeypatch.setattr(images, "check_pushed_size", lambda *args, **kwargs: None)
    settings.CONTAINER_REGISTRIES = ["registry.example.org"]
    phase = dev(static_challenge)
    tarball = push(participant, phase, fake_image_tarball())
    repository = f"registry.example.org/{images.team_repository(static_challenge, team.pk)}"
    reference = push(participant, phase, json.dumps({"submitted_image_uri": f"{repository}:1"}).encode(), "s.json")
    bundle = push(participant, phase, zipped(GOOD), "model.zip")
    assert claim(worker_client, False) is None  # a worker that cannot sandbox code takes neither kind
    job = claim(worker_client, False, True)  # the oldest two are images: skipped by a worker without Docker
    assert job["submission_id"] == bundle.pk and job["container"]["image"] == {"code": job["submission_file"]}
    response = worker_client.get(f"/api/v1/worker/files/{job['submission_file']['sha256']}")
    assert response.status_code == 200 and len(b"".join(response.streaming_content)) == bundle.input_file_size
    assert claim(worker_client, None) is None and claim(worker_client, False, True) is None
    assert [claim(worker_client, True)["submission_id"] for _ in range(2)] == [tarball.pk, reference.pk]


def test_code_bundles_go_only_to_workers_that_can_sandbox_them(static_challenge, participant, admin_user):
    """A Kubernetes worker has images but no bubblewrap: participant code must not run there unsandboxed."""
    from assay.server.submissions.services.tokens import create_worker_token

    sub = push(participant, dev(static_challenge), zipped(GOOD), "model.zip")
    token, _ = create_worker_token(admin_user, "docker worker")
    assert queue.claim_next(token, "w", containers=True) is None
    leased = queue.claim_next(token, "w", containers=True, code_bundles=True)
    assert leased is not None and leased.pk == sub.pk
