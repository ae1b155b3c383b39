"""A real Docker engine for the container tests, and tiny test images built locally from busybox-static.

No registry is reachable here, so nothing is pulled: each image is ``docker import`` of a 2 MB rootfs
(``/bin/busybox`` with its applet links, ``/tmp`` 1777, an ``/etc/passwd`` with user 1000), with
``USER``/``CMD`` set by import changes. Images are cached by tag, so a second session builds nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.evaluation.containers.docker_backend import LABEL, DockerBackend, docker

BUSYBOX = Path(os.environ.get("ASSAY_BUSYBOX", "/bin/busybox"))
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
    try:
        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except docker.errors.DockerException:
        return None


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


def busybox_rootfs() -> bytes:
    """The rootfs tarball: busybox, its applets as symlinks, /tmp 1777, users root/player(1000)/nobody."""
    listing = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, *, mode: int = 0o755, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "etc", "input", "output"):
            add(folder)
        add("tmp", mode=0o1777)
        add("bin/busybox", data=BUSYBOX.read_bytes())
        for applet in listing:
            if applet != "busybox":
                add(f"bin/{applet}", link="busybox")
        passwd = "root:x:0:0::/root:/bin/sh\nplayer:x:1000:1000::/tmp:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        add("etc/passwd", mode=0o644, data=passwd.encode())
        add("etc/group", mode=0o644, data=b"root:x:0:\nplayer:x:1000:\nnogroup:x:65534:\n")
    return buf.getvalue()


@pytest.fixture(scope="session")
def docker_client() -> Any:
    if docker is None:
        pytest.skip("the Docker SDK is not installed (pip install -e '.[containers]')")
    if not BUSYBOX.exists():
        pytest.skip(f"{BUSYBOX} is missing: apt-get install -y busybox-static (make test does it)")
    return ensure_dockerd()


@pytest.fixture(scope="session")
def images(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Test image name → tag, built once per engine (cached by tag)."""
    tags: dict[str, str] = {}
    rootfs: Path | None = None
    for name, changes in IMAGES.items():
        tag = f"assay-test/{name}:{IMAGE_VERSION}"
        tags[name] = tag
        try:
            docker_client.images.get(tag)
            continue
        except docker.errors.ImageNotFound:
            pass
        if rootfs is None:
            rootfs = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
            rootfs.write_bytes(busybox_rootfs())
        repository, version = tag.split(":")
        docker_client.api.import_image_from_file(str(rootfs), repository=repository, tag=version, changes=changes)
    return tags


@pytest.fixture
def backend(docker_client: Any) -> Iterator[DockerBackend]:
    backend = DockerBackend(docker_client)
    yield backend
    leftovers = docker_client.containers.list(all=True, filters={"label": LABEL})
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"


def save_image(client: Any, tag: str, target: Path) -> Path:
    """``docker save`` one image to a tarball, as a participant would upload it."""
    with open(target, "wb") as handle:
        for chunk in client.images.get(tag).save(named=True):
            handle.write(chunk)
    return target
