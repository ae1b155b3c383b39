"""``evalai push IMAGE:TAG -p PHASE -u REGISTRY`` without AWS: the real evalai CLI, a real registry
(Debian's ``docker-registry``), a real Docker engine and a live Assay server.

The server names the team's repository, takes only references into it, pins the pushed tag to its
digest at submit time, and hands workers ``<registry>/<repo>@sha256:…``; the worker's ``pull_image``
applies the tarball rules (non-root, size, architecture) after pulling.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.evaluation.containers.intake import ImageRefused, release_image
from assay.evaluation.containers.registry import pull_image
from assay.server.submissions.services import images as image_rules
from tests.containers.conftest import busybox_rootfs, docker_client, images  # noqa: F401  (a real engine)
from tests.factories import client_for, make_user, token_for, upload

from .test_evalai_cli import EVALAI, Cli

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
CREDENTIALS = "/api/challenges/phases/{}/participant_team/aws/credentials/"
MAX = 50 * 1024**2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a real registry (plain HTTP: docker allows it on loopback), deleted after."""
    if not Path(REGISTRY).exists():
        pytest.skip("docker-registry is not installed: apt-get install -y docker-registry (make system-deps does it)")
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n"
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115  (kept open while the registry runs)
    proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not answer")
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()[-2000:]}")
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def rootfs() -> bytes:
    return busybox_rootfs()


def build(client: Any, rootfs: bytes, *, user: str | None) -> str:
    """A fresh image (its own ID, on no registry yet): ``USER user``, or root when None."""
    tag = f"assay-push-test/{'root' if user is None else 'user'}:{uuid.uuid4().hex[:12]}"
    repository, version = tag.split(":")
    changes = [f"LABEL assay.test={version}"] + ([f"USER {user}"] if user else [])
    client.api.import_image_from_data(rootfs, repository=repository, tag=version, changes=changes)
    return tag


def push(client: Any, tag: str, registry: str, repository: str) -> str:
    """``docker push`` ``tag`` as ``<registry>/<repository>:t``; the manifest digest. The new tag is removed."""
    target = f"{registry}/{repository}"
    client.images.get(tag).tag(target, tag="t")
    digest = ""
    try:
        for line in client.images.push(target, tag="t", stream=True, decode=True):
            assert "error" not in line, line
            digest = (line.get("aux") or {}).get("Digest") or digest
    finally:
        client.images.remove(f"{target}:t")
    assert digest.startswith("sha256:")
    return digest


def forget(client: Any, *names: str) -> None:
    """Untag (and so delete) local images, so that a pull must fetch them."""
    import docker.errors

    for name in names:
        try:
            client.images.remove(name)
        except docker.errors.ImageNotFound:
            pass


def gone(client: Any, image_id: str) -> bool:
    import docker.errors

    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return True
    return False


def manifest_digest(registry: str, repository: str, tag: str) -> str:
    response = httpx.head(
        f"http://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": image_rules.MANIFEST_TYPES}
    )
    assert response.status_code == 200
    return response.headers["Docker-Content-Digest"]


def docker_phase(world, settings, registries: list[str]):
    from assay.server.challenges.models import Challenge

    challenge = world["challenge"]
    Challenge.objects.filter(pk=challenge.pk).update(is_docker_based=True, is_static_dataset_code_upload=True)
    challenge.refresh_from_db()
    settings.CONTAINER_REGISTRIES = registries
    return challenge.phases.get(codename="dev")


# --- the credentials endpoint, for every role --------------------------------------------------------------


@pytest.mark.django_db
def test_repository_endpoint_for_every_role(world, users, settings):
    phase = docker_phase(world, settings, ["registry.example.org:5000", "mirror.example.org"])
    url = CREDENTIALS.format(phase.pk)
    assert client_for().get(url).status_code == 401
    for role in ("participant", "other_participant"):
        response = client_for(users[role]).get(url)
        assert response.status_code == 200, response.json()
        repository = image_rules.team_repository(phase.challenge, world["teams"][role].pk)
        assert repository.endswith(f"-participant-team-{world['teams'][role].pk}")
        assert response.json() == {
            "success": {"federated_user": {}, "docker_repository_uri": f"registry.example.org:5000/{repository}"}
        }
    for user in (users["host"], users["admin"], make_user("dave")):  # not in a participant team of it
        response = client_for(user).get(url)
        assert response.status_code == 403 and "haven't participated" in response.json()["error"]
    assert client_for(users["participant"]).get(CREDENTIALS.format(999999)).status_code == 406
    phase.is_public = False
    phase.save(update_fields=["is_public"])
    assert client_for(users["participant"]).get(url).status_code == 406  # a hidden phase does not exist for them
    assert client_for(users["host"]).get(url).status_code == 403


@pytest.mark.django_db
def test_repository_endpoint_explains_what_is_missing(world, users, settings):
    phase = docker_phase(world, settings, [])
    url = CREDENTIALS.format(phase.pk)
    error = client_for(users["participant"]).get(url).json()["error"]
    assert "ASSAY_CONTAINER_REGISTRIES" in error and "assay push" in error
    settings.CONTAINER_REGISTRIES = ["registry.example.org"]
    other = world["other_challenge"].phases.get(codename="dev")  # a prediction-file challenge
    response = client_for(users["other_host"]).get(CREDENTIALS.format(other.pk))
    assert response.status_code == 400 and "not a docker based challenge" in response.json()["error"]


@pytest.mark.django_db
def test_repository_names_are_valid_docker_repositories(world):
    challenge = world["challenge"]
    challenge.slug = "Weird__Slug -- with spaces_"
    assert image_rules.team_repository(challenge, 7) == "weird-slug-with-spaces-participant-team-7"
    challenge.slug = ""
    assert image_rules.team_repository(challenge, 7) == f"challenge-{challenge.pk}-participant-team-7"


# --- submit-time rules: the team's own repository, the tag resolved by the registry ---------------------


def _submit(user, phase, uri: str):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    data = json.dumps({"submitted_image_uri": uri}).encode()
    return submit(user, phase, upload(data, "submission.json"), "submission.json", SubmissionFields())


@pytest.mark.django_db
def test_no_team_submits_another_teams_image(world, users, settings, registry, docker_client, images):  # noqa: F811
    from assay.server.submissions.services.errors import SubmissionError

    phase = docker_phase(world, settings, [registry])
    bobs = image_rules.team_repository(phase.challenge, world["teams"]["other_participant"].pk)
    digest = push(docker_client, images["busybox"], registry, bobs)
    assert _submit(users["other_participant"], phase, f"{registry}/{bobs}:t").image_digest == digest
    for uri in (f"{registry}/{bobs}:t", f"{registry}/{bobs}@{digest}", f"{registry}/library/busybox:latest"):
        with pytest.raises(SubmissionError) as exc:
            _submit(users["participant"], phase, uri)
        assert exc.value.code == "image_refused" and "your team's own repository" in exc.value.message
    document = upload(json.dumps({"submitted_image_uri": f"{registry}/{bobs}:t"}).encode())
    with pytest.raises(SubmissionError, match="only taken from a known participant team"):
        image_rules.check_submission(phase, document, "submission.json")  # a caller that names no team


@pytest.mark.django_db
def test_tags_are_resolved_when_submitted(world, users, settings, registry):
    from assay.server.submissions.services.errors import SubmissionError

    phase = docker_phase(world, settings, [registry])
    own = image_rules.team_repository(phase.challenge, world["teams"]["participant"].pk)
    for uri in (f"{registry}/{own}:never-pushed", f"{registry}/{own}@sha256:" + "0" * 64):
        with pytest.raises(SubmissionError) as exc:
            _submit(users["participant"], phase, uri)
        assert exc.value.code == "image_not_found" and "is not in the registry" in exc.value.message
    down = f"127.0.0.1:{_free_port()}"  # nothing listens there
    settings.CONTAINER_REGISTRIES = [registry, down]
    with pytest.raises(SubmissionError) as exc:
        _submit(users["participant"], phase, f"{down}/{own}:1")
    assert exc.value.code == "registry_unavailable" and f"the registry {down} did not answer" in exc.value.message
    from assay.server.submissions.models import Submission

    assert not Submission.objects.filter(phase=phase).exists()  # every refusal left nothing behind


@pytest.mark.django_db
def test_oversized_images_are_refused_before_a_pull(world, users, settings, registry, docker_client, images):  # noqa: F811
    """An image over the limit is refused at submit time, before any worker pulls it."""
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.services.errors import SubmissionError

    phase = docker_phase(world, settings, [registry])
    own = image_rules.team_repository(phase.challenge, world["teams"]["participant"].pk)
    digest = push(docker_client, images["busybox"], registry, own)  # about 1 MiB compressed
    Challenge.objects.filter(pk=phase.challenge_id).update(max_docker_image_size=100 * 1024)
    phase.refresh_from_db()
    with pytest.raises(SubmissionError) as exc:
        _submit(users["participant"], phase, f"{registry}/{own}:t")
    assert exc.value.code == "image_refused" and "compressed, over the 0.1 MiB limit" in exc.value.message
    settings.CONTAINER_ARCHITECTURE = "s390x"  # the workers' platform: this image has no variant for it
    Challenge.objects.filter(pk=phase.challenge_id).update(max_docker_image_size=10 * 1024**2)
    phase.refresh_from_db()
    assert _submit(users["participant"], phase, f"{registry}/{own}:t").image_digest == digest  # one platform: the
    # worker checks its architecture after the pull; only multi-platform indexes are chosen from here


# --- the worker's pull ----------------------------------------------------------------------------------------


def test_pull_image_accepts_a_good_image_by_digest(docker_client, registry, rootfs):  # noqa: F811
    tag = build(docker_client, rootfs, user="1000")
    image_id = docker_client.images.get(tag).id
    digest = push(docker_client, tag, registry, "good")
    forget(docker_client, tag)
    assert gone(docker_client, image_id)
    accepted = pull_image(docker_client, f"{registry}/good@{digest}", max_bytes=MAX)
    assert accepted.digest == accepted.reference == image_id and not accepted.preexisting
    assert accepted.user == "1000" and 0 < accepted.size_bytes < MAX and accepted.tags == ()
    release_image(docker_client, accepted)
    assert gone(docker_client, image_id)


@pytest.mark.parametrize(("user", "max_bytes", "words"), [(None, MAX, "runs as root"), ("1000", 1024, "the limit is")])
def test_pull_image_refuses_and_removes(docker_client, registry, rootfs, user, max_bytes, words):  # noqa: F811
    tag = build(docker_client, rootfs, user=user)
    image_id = docker_client.images.get(tag).id
    digest = push(docker_client, tag, registry, "refused")
    forget(docker_client, tag)
    with pytest.raises(ImageRefused, match=words):
        pull_image(docker_client, f"{registry}/refused@{digest}", max_bytes=max_bytes)
    assert gone(docker_client, image_id)


def test_pull_image_keeps_an_image_the_engine_had(docker_client, images, registry):  # noqa: F811
    """A participant may push a copy of an image already here (the host's, say): refused, it stays."""
    digest = push(docker_client, images["busybox-root"], registry, "copy")
    with pytest.raises(ImageRefused, match="runs as root"):
        pull_image(docker_client, f"{registry}/copy@{digest}", max_bytes=MAX)
    assert not gone(docker_client, images["busybox-root"])
    forget(docker_client, f"{registry}/copy@{digest}")


def test_pull_image_refuses_what_it_cannot_pull(docker_client, registry):  # noqa: F811
    with pytest.raises(ImageRefused, match="was not found in its registry"):
        pull_image(docker_client, f"{registry}/nothing-here@sha256:" + "0" * 64, max_bytes=MAX)
    with pytest.raises(ImageRefused, match="not pinned to a digest"):
        pull_image(docker_client, f"{registry}/good:t", max_bytes=MAX)
    with pytest.raises(ImageRefused, match="could not be pulled"):
        pull_image(docker_client, f"127.0.0.1:{_free_port()}/x@sha256:" + "0" * 64, max_bytes=MAX)


# --- the real CLI -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(EVALAI).exists(), reason="evalai CLI not installed: make install-evalai")
@pytest.mark.django_db(transaction=True)
def test_evalai_push_submits_a_pinned_image(
    live_server,
    world,
    users,
    settings,
    tmp_path,
    registry,
    docker_client,  # noqa: F811
    images,  # noqa: F811
    rootfs,
):
    from assay.server.api.evalai.shapes import phase_slug
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.jobs import container_block

    phase = docker_phase(world, settings, [registry])
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    cli = Cli(home, cwd)
    cli.env["EVALAI_CLI_ENVIRONMENT"] = "development"  # no ECR: push to -u REGISTRY
    cli("host", "-sh", live_server.url)

    def evalai_push(user, tag: str, *flags: str) -> tuple[Submission, str]:
        cli("set_token", token_for(user))
        out = cli("push", tag, "-p", phase_slug(phase), "-u", registry, *flags)
        assert "Your docker file is successfully submitted" in out, out
        sub = Submission.objects.filter(phase=phase, created_by=user).latest("pk")
        uri = json.loads(sub.input_file.read())["submitted_image_uri"]
        repository = image_rules.team_repository(phase.challenge, sub.participant_team_id)
        assert uri.startswith(f"{registry}/{repository}:")
        pushed_tag = uri.rsplit(":", 1)[1]
        assert sub.image_digest == manifest_digest(registry, repository, pushed_tag)
        pinned = container_block(sub)["image"]["reference"]
        assert pinned == f"{registry}/{repository}@{sub.image_digest}"  # what workers pull, not the tag
        forget(docker_client, uri)  # the CLI's local tag
        return sub, pinned

    # alice pushes a good image: submitted, pinned, pulled and accepted by the worker's rules
    sub, pinned = evalai_push(users["participant"], images["busybox"], "--private")
    assert sub.status == "submitted" and sub.is_public is False and sub.input_file_name == "submission.json"
    accepted = pull_image(docker_client, pinned, max_bytes=phase.challenge.max_docker_image_size)
    assert accepted.digest == docker_client.images.get(images["busybox"]).id and accepted.preexisting
    release_image(docker_client, accepted)
    assert not gone(docker_client, images["busybox"])
    forget(docker_client, pinned)  # the name the pull gave the shared test image

    # bob pushes a root image into his own repository: the server takes the reference (it never sees the
    # image's config), the worker's pull refuses it and removes it
    root = build(docker_client, rootfs, user=None)
    root_id = docker_client.images.get(root).id
    _, pinned = evalai_push(users["other_participant"], root)
    forget(docker_client, root)
    with pytest.raises(ImageRefused, match="runs as root"):
        pull_image(docker_client, pinned, max_bytes=phase.challenge.max_docker_image_size)
    assert gone(docker_client, root_id)
