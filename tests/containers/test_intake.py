"""Image intake: docker save tarballs checked offline, loaded, re-checked; each refusal one clear line."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from assay.evaluation.containers import ImageRefused, load_image, read_manifest, release_image
from assay.evaluation.containers.intake import host_architecture

from .conftest import save_image

docker = pytest.importorskip("docker", reason="the Docker SDK is not installed (pip install -e '.[containers]')")

LIMIT = 64 * 1024**2


def rewrite(tarball: Path, target: Path, edit_config: Any = None, edit_manifest: Any = None) -> Path:
    """A copy of a saved image with its config or manifest JSON edited (names kept)."""
    with tarfile.open(tarball) as src:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config_name = manifest[0]["Config"]
        with tarfile.open(target, "w") as dst:
            for member in src:
                data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if member.name == config_name and edit_config:
                    config = json.loads(data or b"{}")
                    edit_config(config)
                    data = json.dumps(config).encode()
                if member.name == "manifest.json" and edit_manifest:
                    edit_manifest(manifest)
                    data = json.dumps(manifest).encode()
                if data is not None:
                    member.size = len(data)
                    dst.addfile(member, io.BytesIO(data))
                else:
                    dst.addfile(member)
    return target


@pytest.fixture(scope="module")
def saved(docker_client: Any, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("saved")
    return {name: save_image(docker_client, tag, folder / f"{name}.tar") for name, tag in images.items()}


def test_a_good_image_is_accepted_with_its_digest(
    docker_client: Any, images: dict[str, str], saved: dict[str, Path]
) -> None:
    accepted = load_image(docker_client, saved["predictor"], max_bytes=LIMIT)
    assert accepted.digest == docker_client.images.get(images["predictor"]).id
    assert accepted.reference.startswith("sha256:")
    assert accepted.user == "1000"
    assert accepted.architecture == host_architecture()
    assert 0 < accepted.size_bytes < LIMIT
    assert accepted.preexisting  # the test image is on the engine already: releasing keeps it
    release_image(docker_client, accepted)
    assert docker_client.images.get(images["predictor"]).id == accepted.digest


def test_a_new_image_is_loaded_and_released(
    docker_client: Any, images: dict[str, str], saved: dict[str, Path], tmp_path: Path
) -> None:
    fresh = rewrite(
        saved["busybox"], tmp_path / "fresh.tar",
        edit_config=lambda c: c["config"].update(Env=[f"NONCE={tmp_path.name}"]),
        edit_manifest=lambda m: m[0].update(RepoTags=None),
    )  # fmt: skip
    accepted = load_image(docker_client, fresh, max_bytes=LIMIT)
    assert not accepted.preexisting
    release_image(docker_client, accepted)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(accepted.reference)


def test_root_images_are_refused(saved: dict[str, Path]) -> None:
    with pytest.raises(ImageRefused, match=r"^the image runs as root \(no USER\); add a non-root USER"):
        read_manifest(saved["busybox-root"], max_bytes=LIMIT)


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:1000"])
def test_every_spelling_of_root_is_refused(saved: dict[str, Path], tmp_path: Path, user: str) -> None:
    tarball = rewrite(saved["busybox"], tmp_path / "r.tar", edit_config=lambda c: c["config"].update(User=user))
    with pytest.raises(ImageRefused, match="runs as root"):
        read_manifest(tarball, max_bytes=LIMIT)


def test_kubernetes_bound_images_need_a_numeric_user(saved: dict[str, Path], tmp_path: Path) -> None:
    assert read_manifest(saved["busybox"], max_bytes=LIMIT, numeric_user=True).user == "1000"
    named = rewrite(saved["busybox"], tmp_path / "n.tar", edit_config=lambda c: c["config"].update(User="player"))
    assert read_manifest(named, max_bytes=LIMIT).user == "player"
    with pytest.raises(ImageRefused, match=r"USER player must be numeric here \(e.g. USER 1000\)"):
        read_manifest(named, max_bytes=LIMIT, numeric_user=True)


def test_oversized_images_are_refused(docker_client: Any, saved: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ImageRefused, match=r"^the image tarball is \d+\.\d MiB; the limit is 0\.5 MiB$"):
        load_image(docker_client, saved["busybox"], max_bytes=512 * 1024)
    compressed = tmp_path / "image.tar.gz"
    compressed.write_bytes(gzip.compress(saved["busybox"].read_bytes()))
    size = compressed.stat().st_size
    with pytest.raises(ImageRefused, match="unpacks to more than"):
        read_manifest(compressed, max_bytes=size + 1024)


def test_other_architectures_are_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    other = "arm64" if host_architecture() != "arm64" else "amd64"
    tarball = rewrite(saved["busybox"], tmp_path / "a.tar", edit_config=lambda c: c.update(architecture=other))
    with pytest.raises(ImageRefused, match=f"built for {other}; this platform runs {host_architecture()}"):
        read_manifest(tarball, max_bytes=LIMIT)


def test_a_tarball_cannot_take_over_a_tag(
    docker_client: Any, images: dict[str, str], saved: dict[str, Path], tmp_path: Path
) -> None:
    hijack = rewrite(
        saved["predictor"], tmp_path / "h.tar", edit_manifest=lambda m: m[0].update(RepoTags=[images["busybox"]])
    )
    with pytest.raises(ImageRefused, match="already names another image"):
        load_image(docker_client, hijack, max_bytes=LIMIT)
    assert docker_client.images.get(images["busybox"]).attrs["Config"]["User"] == "1000"


def test_a_forged_config_name_does_not_pass_for_another_image(
    docker_client: Any, images: dict[str, str], saved: dict[str, Path], tmp_path: Path
) -> None:
    """The digest is the hash of the configuration, not its file name: a tarball cannot claim a host image's ID."""
    forged = rewrite(
        saved["busybox"], tmp_path / "forged.tar", edit_config=lambda c: c["config"].update(Env=["FORGED=1"]),
        edit_manifest=lambda m: m[0].update(RepoTags=[images["busybox"]]),
    )  # fmt: skip
    manifest = read_manifest(forged, max_bytes=LIMIT)
    assert manifest.config_digest != docker_client.images.get(images["busybox"]).id
    with pytest.raises(ImageRefused, match="already names another image"):
        load_image(docker_client, forged, max_bytes=LIMIT)


def test_not_an_image_tarball(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as tar:
        tar.addfile(tarfile.TarInfo("hello.txt"))
    with pytest.raises(ImageRefused, match="no manifest.json"):
        read_manifest(junk, max_bytes=LIMIT)
    (tmp_path / "text.tar").write_text("not a tar")
    with pytest.raises(ImageRefused, match="not a readable docker save tarball"):
        read_manifest(tmp_path / "text.tar", max_bytes=LIMIT)
