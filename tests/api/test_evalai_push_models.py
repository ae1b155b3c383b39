"""``evalai push`` and models (README, Models: "EvalAI's CLI (evalai push)"): a model version's image pushed with
the real evalai CLI is the same image — the worker's pull of the pinned reference gives the version's digest —
but a one-off submission, which the model's results do not list; ``assay models submit``'s route (the same
version submitted without an upload) is listed. Needs the evalai CLI, Debian's docker-registry and a Docker
engine (skipped without them, as ``test_evalai_push``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.evaluation.containers.intake import release_image
from assay.evaluation.containers.localimages import save_image
from assay.evaluation.containers.registry import pull_image
from tests.containers.conftest import docker_client, images  # noqa: F401  (a real engine)
from tests.factories import client_for, token_for

from .test_evalai_cli import EVALAI, Cli
from .test_evalai_push import docker_phase, forget, registry  # noqa: F401  (the registry fixture)


@pytest.mark.skipif(not Path(EVALAI).exists(), reason="evalai CLI not installed: make install-evalai")
@pytest.mark.django_db(transaction=True)
def test_evalai_push_of_a_models_image_is_the_same_image_but_a_one_off_submission(
    live_server,
    world,
    users,
    settings,
    tmp_path,
    registry,  # noqa: F811
    docker_client,  # noqa: F811
    images,  # noqa: F811
):
    from assay.server.api.evalai.shapes import phase_slug
    from assay.server.models_zoo.services import registry as models
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.jobs import container_block

    phase = docker_phase(world, settings, [registry])
    alice = users["participant"]
    tarball = save_image(docker_client, images["busybox"], tmp_path / "busybox.tar")
    with tarball.open("rb") as fh:
        model = models.register(
            alice, team=world["teams"]["participant"], name="busybox", kind="image", file=fh, file_name=tarball.name
        )
    version = model.versions.get()
    assert version.image_digest == docker_client.images.get(images["busybox"]).id

    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    cli = Cli(home, cwd)
    cli.env["EVALAI_CLI_ENVIRONMENT"] = "development"  # no ECR: push to -u REGISTRY
    cli("host", "-sh", live_server.url)
    cli("set_token", token_for(alice))
    out = cli("push", images["busybox"], "-p", phase_slug(phase), "-u", registry, "--private")
    assert "Your docker file is successfully submitted" in out, out
    pushed = Submission.objects.filter(phase=phase, created_by=alice).latest("pk")
    pinned = container_block(pushed)["image"]["reference"]
    pulled = pull_image(docker_client, pinned, max_bytes=phase.challenge.max_docker_image_size)
    try:
        assert pulled.digest == version.image_digest  # the model version's image, byte for byte
    finally:
        release_image(docker_client, pulled)
        forget(docker_client, pinned, *[t for t in docker_client.images.get(images["busybox"]).tags if registry in t])

    api = client_for(alice)
    assert api.get(f"/api/v1/models/{model.pk}/results").json()["results"] == []  # evalai push: not the model's
    made = api.post(f"/api/v1/models/{model.pk}/versions/1/submit", {"phase": phase.pk}, format="json")
    assert made.status_code == 201, made.content
    listed = api.get(f"/api/v1/models/{model.pk}/results").json()["results"]
    assert [r["submission"] for r in listed] == [made.json()["id"]] and made.json()["id"] != pushed.pk
