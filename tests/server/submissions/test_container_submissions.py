"""Docker-based challenges on the server: bundle files, image checks at upload, the job's container block, claims.

The worker side (loading and running the images with a real engine) is tested in tests/worker and
tests/containers; here everything runs without Docker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

from assay.bundle import read_bundle
from assay.bundle.errors import BundleError
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.submissions.models import Submission
from assay.server.submissions.services import images, jobs, queue
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.uploads import services as uploads
from tests.factories import DEMO_BUNDLE, import_published, register_team, upload
from tests.server.images import digest_of, fake_image_tarball

pytestmark = pytest.mark.django_db


def container_bundle(tmp_path: Path, *, static: bool = True, env_tarball: bytes | None = None) -> Path:
    """The demo bundle turned docker-based: inputs for static phases, or an environment image."""
    root = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, root)
    config = yaml.safe_load((root / "challenge_config.yaml").read_text())
    config.update(is_docker_based=True, is_static_dataset_code_upload=static, max_docker_image_size=10 * 1024**2)
    (root / "inputs").mkdir()
    (root / "inputs" / "numbers.txt").write_text("1\n2\n3\n")
    for phase in config["challenge_phases"]:
        if static:
            phase["test_inputs"] = "inputs/numbers.txt"
        elif env_tarball is not None:
            phase["environment_image"] = "environment/env.tar"
        else:
            phase["environment_image"] = "hosts/environment:1"
    if env_tarball is not None:
        (root / "environment").mkdir()
        (root / "environment" / "env.tar").write_bytes(env_tarball)
    (root / "challenge_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def imported(path: Path, host_team) -> Challenge:
    challenge = import_published(host_team, path)
    return challenge


@pytest.fixture
def static_challenge(tmp_path, media, host_team, demo_challenge, team):
    """The demo challenge itself re-imported as a static-dataset docker challenge (Alice's team is in it)."""
    with read_bundle(container_bundle(tmp_path)) as bundle:
        challenge = import_bundle(bundle, host_team=host_team, challenge=demo_challenge).challenge
    challenge.refresh_from_db()
    return challenge


@pytest.fixture
def worker_client(admin_user):
    _, token = create_worker_token(admin_user, "container worker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def dev(challenge: Challenge):
    return challenge.phases.get(codename="dev")


def push(user, phase, data: bytes, name: str = "image.tar") -> Submission:
    return submit(user, phase, upload(data, name), name, SubmissionFields())


# --- bundles -------------------------------------------------------------------------------------------


def test_static_bundle_stores_test_inputs_apart_from_labels(static_challenge, media):
    phase = dev(static_challenge)
    assert phase.test_inputs.name.startswith("test_inputs/") and phase.test_inputs_size == len("1\n2\n3\n")
    assert phase.test_annotation.name.startswith("annotations/")
    assert phase.test_inputs_sha256 != phase.test_annotation_sha256


def test_environment_bundle_stores_its_image_tarball(tmp_path, media, host_team):
    tarball = fake_image_tarball()
    challenge = imported(container_bundle(tmp_path, static=False, env_tarball=tarball), host_team)
    phase = dev(challenge)
    assert phase.environment_image == "environment/env.tar" and phase.environment_image_size == len(tarball)
    other = imported(container_bundle(tmp_path / "2", static=False), host_team)
    assert dev(other).environment_image == "hosts/environment:1" and not dev(other).environment_image_file


def test_bundle_rules_for_container_phases(tmp_path):
    root = container_bundle(tmp_path, static=False)
    config = yaml.safe_load((root / "challenge_config.yaml").read_text())
    for phase in config["challenge_phases"]:
        phase.pop("environment_image")
        phase["test_inputs"] = "inputs/numbers.txt"
    (root / "challenge_config.yaml").write_text(yaml.safe_dump(config))
    with read_bundle(root) as bundle:
        codes = {w.code for w in bundle.warnings}
    assert {"missing_environment_image", "test_inputs_unused"} <= codes
    config["challenge_phases"][0]["environment_image"] = "environment/missing.tar"
    (root / "challenge_config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(BundleError) as exc:
        read_bundle(root)
    assert "file_not_found" in {p.code for p in exc.value.problems}


# --- submitting images -----------------------------------------------------------------------------------


def test_a_good_image_is_accepted_with_its_digest(static_challenge, participant, media):
    data = fake_image_tarball(gz=True)
    sub = push(participant, dev(static_challenge), data, "model.tar.gz")
    assert sub.image_digest == digest_of(data) and sub.status == "submitted"


@pytest.mark.parametrize(
    ("tarball", "words"),
    [
        (lambda: fake_image_tarball(user=""), "runs as root"),
        (lambda: fake_image_tarball(user="0:0"), "runs as root"),
        (lambda: fake_image_tarball(architecture="s390x-not-here"), "built for s390x-not-here"),
        (lambda: fake_image_tarball(os_name="windows"), "only linux"),
        (lambda: fake_image_tarball(padding=11 * 1024**2), "limit"),
        (lambda: b"\x1f\x8b" + b"garbage" * 100, "not a readable docker save tarball"),
        (lambda: b"", "not a readable docker save tarball"),
    ],
)
def test_bad_images_are_refused_at_once_and_leave_nothing(static_challenge, participant, media, tarball, words):
    before = {p for p in media.rglob("*") if p.is_file()}
    with pytest.raises(SubmissionError) as exc:
        push(participant, dev(static_challenge), tarball())
    assert exc.value.code == "image_refused" and words in exc.value.message
    assert not Submission.objects.exists()
    assert {p for p in media.rglob("*") if p.is_file()} == before


def test_docker_phases_take_images_whatever_their_file_types(static_challenge, participant):
    with pytest.raises(SubmissionError) as exc:
        push(participant, dev(static_challenge), b"{}", "predictions.json")  # .json is a phase type, not an image
    assert exc.value.code == "file_type_not_allowed" and "docker save" in exc.value.message


def test_image_references_only_from_the_operators_registries(
    static_challenge, participant, team, settings, monkeypatch
):
    # the registry's answer is faked here; tests/api/test_evalai_push.py asks a real one
    monkeypatch.setattr(images, "resolve_digest", lambda reference: reference.digest or "sha256:" + "b" * 64)
    monkeypatch.setattr(images, "check_pushed_size", lambda *args, **kwargs: None)
    phase = dev(static_challenge)
    repository = f"registry.example.org/{images.team_repository(static_challenge, team.pk)}"
    document = json.dumps({"submitted_image_uri": f"{repository}:3"}).encode()
    settings.CONTAINER_REGISTRIES = ["registry.example.org"]
    sub = push(participant, phase, document, "submission.json")
    assert sub.image_digest == "sha256:" + "b" * 64  # the tag, resolved at submit time
    assert jobs.container_block(sub)["image"] == {"reference": f"{repository}@sha256:" + "b" * 64}
    pinned = json.dumps({"submitted_image_uri": f"{repository}@sha256:" + "a" * 64}).encode()
    assert push(participant, phase, pinned, "submission.json").image_digest == "sha256:" + "a" * 64
    for bad, words in (
        ({"submitted_image_uri": "evil.example.com/team/agent:1"}, "not one of them"),
        ({"submitted_image_uri": "registry.example.org/team/agent:1"}, "your team's own repository"),
        ({"submitted_image_uri": "not a reference; rm -rf /"}, "not an image reference"),
        ({"image": "x"}, "submitted_image_uri"),
        ([1, 2], "submitted_image_uri"),
    ):
        with pytest.raises(SubmissionError) as exc:
            push(participant, phase, json.dumps(bad).encode(), "submission.json")
        assert words in exc.value.message
    with pytest.raises(SubmissionError):
        push(participant, phase, b"{" * 70000, "submission.json")
    settings.CONTAINER_REGISTRIES = []
    with pytest.raises(SubmissionError) as exc:
        push(participant, phase, document, "submission.json")
    assert exc.value.code == "file_type_not_allowed"


def test_resumable_upload_checks_the_whole_image(static_challenge, participant, media):
    phase = dev(static_challenge)
    bad = fake_image_tarball(user="root")
    up = uploads.begin(participant, phase, "image.tar", SubmissionFields(), size=len(bad))
    uploads.put_part(up, 1, [bad])
    with pytest.raises(SubmissionError) as exc:
        uploads.finish(up)
    assert exc.value.code == "image_refused"
    refused = Submission.objects.get(pk=up.submission_id)
    assert refused.status == "failed" and "runs as root" in refused.failure_reason
    good = fake_image_tarball()
    up = uploads.begin(participant, phase, "image.tar", SubmissionFields(), size=len(good))
    uploads.put_part(up, 1, [good])
    assert uploads.finish(up).image_digest == digest_of(good)


# --- jobs and claims ---------------------------------------------------------------------------------------


def claim(client, containers: bool | None, code_bundles: bool | None = None):
    body = {"worker_id": "w"} | ({} if containers is None else {"containers": containers})
    body |= {} if code_bundles is None else {"code_bundles": code_bundles}
    response = client.post("/api/v1/worker/claim", body, format="json")
    return None if response.status_code == 204 else response.json()["job"]


def test_container_jobs_go_only_to_workers_that_run_images(static_challenge, participant, worker_client):
    sub = push(participant, dev(static_challenge), fake_image_tarball())
    assert claim(worker_client, None) is None and claim(worker_client, False) is None
    job = claim(worker_client, True)
    assert job["submission_id"] == sub.pk
    block = job["container"]
    assert block["kind"] == "static_dataset" and block["image_digest"] == sub.image_digest
    assert block["image"]["file"]["sha256"] == sub.input_file_sha256 == job["submission_file"]["sha256"]
    assert block["max_image_bytes"] == 10 * 1024**2 and block["environment"] is None
    inputs = block["test_inputs"]
    assert inputs["sha256"] == dev(static_challenge).test_inputs_sha256
    for info in (inputs, job["annotation"], job["evaluation_script"], block["image"]["file"]):
        response = worker_client.get(f"/api/v1/worker/files/{info['sha256']}")
        assert response.status_code == 200 and len(b"".join(response.streaming_content)) == info["size"]


def test_test_inputs_are_not_served_before_a_job_is_leased(static_challenge, participant, worker_client):
    push(participant, dev(static_challenge), fake_image_tarball())
    sha = dev(static_challenge).test_inputs_sha256
    assert worker_client.get(f"/api/v1/worker/files/{sha}").status_code == 404


def test_prediction_jobs_are_still_claimed_by_every_worker(demo_challenge, team, participant, worker_client):
    sub = submit(participant, dev(demo_challenge), upload(), "preds.json", SubmissionFields())
    job = claim(worker_client, False)
    assert job["submission_id"] == sub.pk and job["container"] is None


def test_environment_jobs_name_the_hosts_image(tmp_path, media, host_team, participant, admin_user):

    tarball = fake_image_tarball()
    challenge = imported(container_bundle(tmp_path, static=False, env_tarball=tarball), host_team)
    register_team(challenge, participant, "Agents")
    sub = push(participant, dev(challenge), fake_image_tarball(user="agent"))
    token, _ = create_worker_token(admin_user, "w")
    leased = queue.claim_next(token, "w", containers=True)
    assert leased is not None and leased.pk == sub.pk
    block = jobs.job_payload(leased)["container"]
    assert block["kind"] == "environment" and block["test_inputs"] is None
    assert block["environment"]["file"]["sha256"] == dev(challenge).environment_image_sha256
    assert jobs.file_for_worker(token, dev(challenge).environment_image_sha256) is not None


def test_the_api_tells_clients_what_images_it_takes(static_challenge, demo_challenge, settings):
    from assay.evaluation.containers.intake import host_architecture

    body = APIClient().get(f"/api/v1/challenges/{static_challenge.pk}").json()
    assert body["max_docker_image_size"] == 10 * 1024**2 and body["is_static_dataset_code_upload"] is True
    assert body["container_architecture"] == host_architecture()
    settings.CONTAINER_ARCHITECTURE = "arm64"
    assert APIClient().get(f"/api/v1/challenges/{static_challenge.pk}").json()["container_architecture"] == "arm64"


def test_container_logs_are_for_hosts_only(static_challenge, participant, host, media):
    """The participant's code read the test inputs: what it printed could carry them out."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.test import Client

    from tests.factories import client_for as api_client_for

    sub = push(participant, dev(static_challenge), fake_image_tarball())
    name = default_storage.save("submission_logs/x/stdout.txt", ContentFile(b"1\n2\n3\n"))
    Submission.objects.filter(pk=sub.pk).update(stdout_file=name, stderr_file=name)
    for user, web_status, api_status in ((participant, 403, 403), (host, 200, 200)):
        web = Client()
        web.force_login(user)
        assert web.get(f"/submissions/{sub.pk}/files/stdout").status_code == web_status
        api = api_client_for(user)
        for kind in ("stdout", "stderr"):
            assert api.get(f"/api/v1/submissions/{sub.pk}/{kind}").status_code == api_status
        detail = api.get(f"/api/v1/submissions/{sub.pk}").json()
        assert ("stdout" in detail) is (user == host) and detail["image_digest"] == sub.image_digest
    # the web page neither links logs participants may not open nor hides the digest they may check
    web = Client()
    web.force_login(participant)
    page = web.get(f"/challenges/{static_challenge.pk}/submissions").content.decode()
    assert f"/submissions/{sub.pk}/files/stdout" not in page
    assert sub.image_digest[:19] in page


def test_multi_platform_images_are_judged_by_the_workers_variant(monkeypatch, settings):
    """An index names one manifest per platform: the workers' one is sized, a missing one refused."""
    import httpx

    settings.CONTAINER_ARCHITECTURE = "amd64"
    small, big = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    documents = {
        "sha256:" + "0" * 64: {"manifests": [
            {"digest": small, "platform": {"architecture": "arm64", "os": "linux"}},
            {"digest": big, "platform": {"architecture": "amd64", "os": "linux"}},
        ]},
        small: {"config": {"size": 10}, "layers": [{"size": 100}]},
        big: {"config": {"size": 10}, "layers": [{"size": 3 * 1024**2}, {"size": 1024**2}]},
    }  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=documents[request.url.path.rsplit("/", 1)[-1]])

    real_client = httpx.Client
    monkeypatch.setattr(images.httpx, "Client", lambda **kw: real_client(transport=httpx.MockTransport(answer), **kw))
    reference = images.ImageReference("r.example/t/a:1", "r.example", "t/a", "1", "")
    images.check_pushed_size(reference, "sha256:" + "0" * 64, max_bytes=5 * 1024**2)  # amd64: 4 MiB, fits
    with pytest.raises(SubmissionError, match="4.0 MiB compressed, over the 3.0 MiB limit"):
        images.check_pushed_size(reference, "sha256:" + "0" * 64, max_bytes=3 * 1024**2)
    settings.CONTAINER_ARCHITECTURE = "s390x"
    with pytest.raises(SubmissionError, match="no linux/s390x variant .it has amd64, arm64."):
        images.check_pushed_size(reference, "sha256:" + "0" * 64, max_bytes=5 * 1024**2)
