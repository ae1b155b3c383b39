"""``docker save``-shaped tarballs built in memory, for server tests that need no Docker engine.

The server reads only ``manifest.json`` and the image config; a real layer is not needed for its checks
(the worker loads and checks the image again with a real engine: tests/worker, tests/containers).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from assay.evaluation.containers.intake import host_architecture


def fake_image_tarball(
    *, user: str = "1000", architecture: str | None = None, os_name: str = "linux", padding: int = 0, gz: bool = False
) -> bytes:
    """One image: its config (named by its own sha256, as docker save does), a manifest, optional padding."""
    config = json.dumps(
        {"architecture": architecture or host_architecture(), "os": os_name, "config": {"User": user}}
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["team/model:1"], "Layers": ["layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((config_name, config), ("manifest.json", manifest), ("layer.tar", b"\0" * padding)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return gzip.compress(data) if gz else data


def digest_of(tarball: bytes) -> str:
    """The image ID the tarball's config names."""
    if tarball[:2] == b"\x1f\x8b":
        tarball = gzip.decompress(tarball)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    return "sha256:" + hashlib.sha256(config).hexdigest()
