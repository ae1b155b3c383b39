"""``assay push IMAGE:TAG --phase P`` against a live server and a real Docker engine.

The participant must hear about a root image, a missing image or a stopped engine before anything
is uploaded; what is uploaded must be a ``docker save`` tarball the worker's intake accepts; and the
temporary tarball must be gone afterwards, Ctrl-C included.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from assay.cli import client_participant, client_push
from assay.evaluation.containers.intake import ImageRefused, read_manifest
from tests.cli.test_client import run  # noqa: F401  (the CLI runner fixture)
from tests.containers.conftest import docker_client, images  # noqa: F401  (a real engine, tiny busybox images)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where push makes its private folder, to prove it is removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def docker_phase(live_server, world, run) -> Any:  # noqa: F811
    """The demo's dev phase made docker-based (the server then takes images whatever its file types); alice in."""
    from assay.server.challenges.models import Challenge

    challenge = world["challenge"]
    Challenge.objects.filter(pk=challenge.pk).update(is_docker_based=True)
    phase = challenge.phases.get(codename="dev")
    run("login", "--server", live_server.url, "-u", "alice", "--password", "pw")
    return phase


def _submissions() -> int:
    from assay.server.submissions.models import Submission

    return Submission.objects.count()


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("assay-test/busybox:1", "assay-test-busybox-1.tar"),
        ("my-agent", "my-agent-latest.tar"),
        ("registry.example.org:5000/team/agent:v1.2", "registry.example.org-5000-team-agent-v1.2.tar"),
        ("agent@sha256:" + "ab" * 32, "agent-abababababab.tar"),
        ("sha256:" + "cd" * 32, "image-cdcdcdcdcdcd.tar"),
        ("../../etc/passwd:x", "etc-passwd-x.tar"),
    ],
)
def test_uploaded_file_name_is_repo_and_tag_made_safe(reference: str, name: str) -> None:
    assert client_push.image_file_name(reference) == name


def test_export_is_a_tarball_the_worker_accepts(docker_client, images, tmp_path) -> None:  # noqa: F811
    image = docker_client.images.get(images["busybox"])
    tarball = client_push.export_image(image, images["busybox"], tmp_path / "out.tar", quiet=True)
    manifest = read_manifest(tarball, max_bytes=50 * 1024**2)
    assert manifest.config_digest == image.id
    assert manifest.repo_tags == (images["busybox"],) and manifest.user == "1000"
    with pytest.raises(ImageRefused, match="limit"):
        read_manifest(tarball, max_bytes=1024)


def test_precheck_applies_the_workers_rules_before_the_export(docker_client, images) -> None:  # noqa: F811
    attrs = docker_client.images.get(images["busybox"]).attrs
    client_push.precheck(attrs, max_bytes=None, architecture=attrs["Architecture"])
    with pytest.raises(ImageRefused, match="limit"):
        client_push.precheck(attrs, max_bytes=1024, architecture=attrs["Architecture"])
    with pytest.raises(ImageRefused, match="built for"):
        client_push.precheck(attrs, max_bytes=None, architecture="s390x-not-this")
    with pytest.raises(ImageRefused, match="root"):
        client_push.precheck(docker_client.images.get(images["busybox-root"]).attrs, max_bytes=None,
                             architecture=attrs["Architecture"])  # fmt: skip


def test_push_uploads_the_image_to_a_docker_phase(docker_phase, docker_client, images, run, scratch) -> None:  # noqa: F811
    """Needs the server to accept image tarballs for docker-based challenges."""
    from assay.server.submissions.models import Submission

    arch = docker_client.images.get(images["busybox"]).attrs["Architecture"]
    out = run("push", images["busybox"], "--phase", str(docker_phase.pk), "--arch", arch, "--method-name", "boxed",
              "--json")  # fmt: skip
    body = json.loads(out)
    sub = Submission.objects.get(pk=body["id"])
    assert sub.input_file_name == "assay-test-busybox-1.tar" and sub.method_name == "boxed"
    with sub.input_file.open("rb") as stored, (scratch / "copy.tar").open("wb") as copy:
        copy.write(stored.read())
    assert read_manifest(scratch / "copy.tar", max_bytes=50 * 1024**2).config_digest == (
        docker_client.images.get(images["busybox"]).id
    )
    (scratch / "copy.tar").unlink()
    assert not list(scratch.iterdir()), "the exported tarball was left behind"
    out = run("push", images["busybox"], "--phase", str(docker_phase.pk), "--arch", arch)
    assert "submission" in out and "assay-test-busybox-1.tar" in out


def test_the_servers_refusal_is_printed(docker_phase, docker_client, images, run, scratch) -> None:  # noqa: F811
    """A limit the API does not expose is still enforced by the server at upload; its message reaches the user."""
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.models import Submission

    Challenge.objects.filter(pk=docker_phase.challenge_id).update(max_docker_image_size=4096)
    arch = docker_client.images.get(images["busybox"]).attrs["Architecture"]
    out = run("push", images["busybox"], "--phase", str(docker_phase.pk), "--arch", arch, code=1)
    assert "the limit is" in out
    assert not Submission.objects.exclude(status="failed").exists() and not list(scratch.iterdir())


def test_root_and_oversized_images_are_refused_before_upload(docker_phase, images, run, scratch, monkeypatch) -> None:  # noqa: F811
    out = run("push", images["busybox-root"], "--phase", str(docker_phase.pk), code=1)
    assert "runs as root" in out and "USER" in out
    real = client_push._phase_challenge
    monkeypatch.setattr(client_push, "_phase_challenge", lambda api, p: {**real(api, p), "max_docker_image_size": 4096})
    out = run("push", images["busybox"], "--phase", str(docker_phase.pk), code=1)
    assert "the limit is" in out
    assert _submissions() == 0 and not list(scratch.iterdir())


def test_missing_image_says_how_to_make_one(docker_phase, docker_client, run) -> None:  # noqa: F811
    out = run("push", "assay-test/no-such-image:0", "--phase", str(docker_phase.pk), code=1)
    assert "no image" in out and "docker build" in out
    assert _submissions() == 0


def test_no_engine_and_no_sdk_say_what_to_do(docker_phase, run, monkeypatch) -> None:  # noqa: F811
    pytest.importorskip("docker", reason="the Docker SDK is not installed (pip install -e '.[containers]')")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    out = run("push", "assay-test/busybox:1", "--phase", str(docker_phase.pk), code=2)
    assert "no Docker engine" in out and "start Docker" in out
    monkeypatch.setitem(sys.modules, "docker", None)  # as if the optional extra were not installed
    out = run("push", "assay-test/busybox:1", "--phase", str(docker_phase.pk), code=2)
    assert "Docker SDK is not installed" in out and "pip install '.[containers]'" in out


def test_a_phase_without_containers_is_refused_before_the_export(live_server, world, run) -> None:  # noqa: F811
    run("login", "--server", live_server.url, "-u", "alice", "--password", "pw")
    dev = world["challenge"].phases.get(codename="dev")
    out = run("push", "assay-test/busybox:1", "--phase", str(dev.pk), code=1)
    assert "does not take container images" in out and "assay submit" in out
    assert "no such phase" in run("push", "assay-test/busybox:1", "--phase", "999999", code=1)


def test_ctrl_c_during_upload_removes_the_tarball(docker_phase, docker_client, images, run, scratch, monkeypatch):  # noqa: F811
    seen: list[Path] = []

    def interrupted(api, phase, path, fields, quiet=False):
        seen.append(path)
        assert path.is_file() and path.parent.parent == scratch
        raise KeyboardInterrupt

    monkeypatch.setattr(client_participant, "upload_file", interrupted)
    arch = docker_client.images.get(images["busybox"]).attrs["Architecture"]
    run("push", images["busybox"], "--phase", str(docker_phase.pk), "--arch", arch, code=130)  # 128 + SIGINT
    assert seen and not list(scratch.iterdir())


def test_the_web_form_of_a_docker_phase_shows_push_and_the_size_limit(world, users, client) -> None:
    """The submit page says what to upload and how (``assay push`` or ``docker save``), with the limit."""
    from assay.server.challenges.models import Challenge

    challenge = world["challenge"]
    dev = challenge.phases.get(codename="dev")
    client.force_login(users["participant"])
    page = client.get(f"/challenges/{challenge.pk}/submit?phase={dev.pk}").content.decode()
    assert "Allowed: .json" in page and "assay push" not in page
    Challenge.objects.filter(pk=challenge.pk).update(is_docker_based=True, max_docker_image_size=50 * 1024**2)
    page = client.get(f"/challenges/{challenge.pk}/submit?phase={dev.pk}").content.decode()
    assert f"assay push IMAGE:TAG --phase {dev.pk}" in page and "docker save IMAGE -o image.tar" in page
    assert "Container image (a <code>docker save</code> tarball, .tar or .tar.gz)" in page
    assert 'accept=".tar,.tar.gz,.tgz,.json"' in page and "50.0\xa0MB" in page
    Challenge.objects.filter(pk=challenge.pk).update(is_static_dataset_code_upload=True)
    page = client.get(f"/challenges/{challenge.pk}/submit?phase={dev.pk}").content.decode()
    assert 'accept=".tar,.tar.gz,.tgz,.json,.zip"' in page and "<code>run.sh</code>" in page


def test_phase_listings_of_a_docker_challenge_say_push(docker_phase, run) -> None:  # noqa: F811
    from assay.server.challenges.models import Challenge

    challenge = docker_phase.challenge
    for command in (["phases", str(challenge.pk)], ["challenges", "show", str(challenge.pk)]):
        out = run(*command)
        assert "assay push IMAGE:TAG --phase ID" in out and "a container image" in out and "code bundle" not in out
    Challenge.objects.filter(pk=challenge.pk).update(is_static_dataset_code_upload=True)
    assert "CODE.zip" in run("phases", str(challenge.pk))
