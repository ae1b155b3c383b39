"""A real Docker engine for the container tests, and tiny test images built locally from busybox-static.

No registry is reachable here, so nothing is pulled: the images are built by
:mod:`assay.evaluation.containers.localimages` (``docker import`` of a 2 MB busybox rootfs, ``USER``/``CMD``
set by import changes), cached by tag, so a second session builds nothing. The names below
(``busybox_rootfs``, ``save_image``, ``ensure_dockerd``...) stay importable from here for the tests that use them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assay.evaluation.containers.docker_backend import OWNER_LABEL, DockerBackend, docker
from assay.evaluation.containers.localimages import BUSYBOX, build_image, busybox_rootfs, engine
from assay.evaluation.containers.localimages import save_image as save_image  # tests import it from here

IMAGE_VERSION = "1"  # bump when the rootfs below changes
DOCKERD = [
    "dockerd", "--storage-driver=overlay2", "--iptables=false", "--ip6tables=false", "--bridge=none",
    "--data-root=/var/lib/docker",
]  # fmt: skip

# The participant's program of the good static-dataset image: one prediction per input line.
PREDICTOR = """n=0; while read -r line; do n=$((n+1)); done < /input/inputs.txt
printf '{"predictions": %s}\\n' "$n" > "$SUBMISSION_PATH/submission.json"
"""
IMAGES: dict[str, list[str]] = {
    "busybox": ["USER 1000"],
    "busybox-root": [],
    "predictor": ["USER 1000", "CMD " + json.dumps(["/bin/sh", "-c", PREDICTOR])],
}


def _engine() -> Any | None:
    return engine(timeout=60)


def ensure_dockerd() -> Any:
    """A client of a running engine: start dockerd as sandbox.md says when we are root, else skip."""
    client = _engine()
    if client is not None:
        return client
    if os.geteuid() != 0:
        pytest.skip("no Docker engine answers and we are not root to start one (make test starts dockerd)")
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed: apt-get install -y docker.io busybox-static (make test does it)")
    with open("/var/log/dockerd.log", "ab") as log:
        subprocess.Popen(DOCKERD, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(60):
        time.sleep(0.5)
        client = _engine()
        if client is not None:
            return client
    pytest.skip("dockerd was started but does not answer; see /var/log/dockerd.log")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    if docker is None:
        pytest.skip("the Docker SDK is not installed (pip install -e '.[containers]')")
    if not BUSYBOX.exists():
        pytest.skip(f"{BUSYBOX} is missing: apt-get install -y busybox-static (make test does it)")
    return ensure_dockerd()


@pytest.fixture(scope="session")
def images(docker_client: Any) -> dict[str, str]:
    """Test image name → tag, built once per engine (cached by tag)."""
    tags: dict[str, str] = {}
    rootfs: bytes | None = None
    for name, changes in IMAGES.items():
        tag = f"assay-test/{name}:{IMAGE_VERSION}"
        tags[name] = tag
        try:
            docker_client.images.get(tag)
            continue
        except docker.errors.ImageNotFound:
            pass
        if rootfs is None:
            rootfs = busybox_rootfs()
        build_image(docker_client, tag, changes, rootfs=rootfs)
    return tags


def owned_by(backend: DockerBackend) -> dict[str, str]:
    """A filter for the containers ``backend`` started. The engine is shared (the other pytest-xdist
    worker, other people's runs, a local stack): a check for every Assay container would see theirs."""
    return {"label": f"{OWNER_LABEL}={backend.owner}"}


@pytest.fixture
def backend(docker_client: Any) -> Iterator[DockerBackend]:
    backend = DockerBackend(docker_client)
    yield backend
    leftovers = docker_client.containers.list(all=True, filters=owned_by(backend))
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"
