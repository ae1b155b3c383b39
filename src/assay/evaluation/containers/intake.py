"""Accepting a participant's image: a ``docker save`` tarball, checked before and after loading.

Checks (each refusal is one line a participant can act on):

- the tarball and its unpacked content fit the phase's size limit (checked while reading, so a
  compressed bomb stops early);
- it holds exactly one image, built for this worker's architecture and for Linux;
- the image declares a non-root ``USER`` (Grand Challenge's rule: empty, ``root``, ``0`` and
  ``0:*``/``root:*`` are refused);
- its tags do not take over a tag that already names another image on this engine (a tarball could
  otherwise replace, say, the host's environment image).

The manifest is read from the tarball itself before the engine sees it; the loaded image is checked
again, and the image ID (``sha256:…`` of its config) is recorded as its digest. Runs use that ID.
"""

from __future__ import annotations

import hashlib
import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .contract import is_root_user
from .contract import numeric_user as numeric_user_ids

#: ``platform.machine()`` → the architecture names image configs use (Go's GOARCH).
GO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}  # fmt: skip
_MAX_JSON = 4 * 1024**2


class ImageRefused(ValueError):
    """The image cannot be accepted; the message says why in one line."""


@dataclass(frozen=True)
class ImageManifest:
    """What a tarball says about its image, read without loading it."""

    config_digest: str
    architecture: str
    os: str
    user: str
    repo_tags: tuple[str, ...]
    unpacked_bytes: int


@dataclass(frozen=True)
class AcceptedImage:
    """A loaded, checked participant image. Run it by ``reference`` (its ID), never by a tag."""

    reference: str
    digest: str
    user: str
    architecture: str
    size_bytes: int
    tags: tuple[str, ...]
    preexisting: bool = False  # the engine had this very image before (e.g. the host's): never remove it


def host_architecture() -> str:
    machine = platform.machine().lower()
    return GO_ARCH.get(machine, machine)


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB"


def read_manifest(
    tarball: Path | IO[bytes], *, max_bytes: int, architecture: str | None = None, numeric_user: bool = False
) -> ImageManifest:
    """Check a ``docker save`` tarball (plain or gzip; a path or a seekable file) offline.

    Raises :class:`ImageRefused` saying why. ``numeric_user=True`` also requires ``USER 1000`` rather
    than a name: Kubernetes can only verify ``runAsNonRoot`` for numeric users, so images bound for
    the Job backend need one. A file object is read from its start and left at its start.
    """
    if hasattr(tarball, "read"):
        handle: IO[bytes] = tarball  # type: ignore[assignment]
        handle.seek(0, 2)
        on_disk = handle.tell()
        handle.seek(0)
        try:
            return _read_manifest(handle, on_disk, max_bytes, architecture, numeric_user)
        finally:
            handle.seek(0)
    tarball = Path(tarball)  # type: ignore[arg-type]
    if not tarball.is_file():
        raise ImageRefused(f"{tarball.name} is not a file")
    with open(tarball, "rb") as handle:
        return _read_manifest(handle, tarball.stat().st_size, max_bytes, architecture, numeric_user)


def _read_manifest(
    handle: IO[bytes], on_disk: int, max_bytes: int, architecture: str | None, numeric_user: bool
) -> ImageManifest:
    if on_disk > max_bytes:
        raise ImageRefused(f"the image tarball is {_mib(on_disk)}; the limit is {_mib(max_bytes)}")
    total = 0
    try:
        with tarfile.open(fileobj=handle, mode="r:*") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for member in tar:
                total += member.size
                if total > max_bytes:
                    raise ImageRefused(f"the image unpacks to more than the {_mib(max_bytes)} limit")
                members[member.name.removeprefix("./")] = member
            manifest = _json_member(tar, members, "manifest.json")
            if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
                count = len(manifest) if isinstance(manifest, list) else "no"
                raise ImageRefused(f"the tarball must hold exactly one image, not {count}; docker save one image")
            entry = manifest[0]
            config_name = str(entry.get("Config", "")).removeprefix("./")
            config_bytes = _member_bytes(tar, members, config_name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ImageRefused(f"not a readable docker save tarball ({exc})") from exc
    try:
        config = json.loads(config_bytes)
    except ValueError as exc:
        raise ImageRefused(f"the image configuration is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ImageRefused("the image configuration is not a JSON object")
    arch = str(config.get("architecture", ""))
    os_name = str(config.get("os", ""))
    user = str((config.get("config") or {}).get("User") or "")
    check_image(arch, os_name, user, architecture)
    if numeric_user and not _is_numeric_user(user):
        raise ImageRefused(f"the image's USER {user} must be numeric here (e.g. USER 1000), not a name")
    digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()  # the image ID, whatever the file is called
    return ImageManifest(digest, arch, os_name, user, tuple(entry.get("RepoTags") or ()), total)


def _member_bytes(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    if member is None or not member.isfile():
        if name == "manifest.json":
            raise ImageRefused(
                "not a docker save tarball (no manifest.json); create it with: docker save IMAGE -o FILE"
            )
        raise ImageRefused(f"the image configuration {name or '(none)'} is missing from the tarball")
    if member.size > _MAX_JSON:
        raise ImageRefused(f"{name} is implausibly large ({_mib(member.size)})")
    handle = tar.extractfile(member)
    return handle.read() if handle else b""


def _json_member(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> Any:
    try:
        return json.loads(_member_bytes(tar, members, name))
    except ValueError as exc:
        raise ImageRefused(f"{name} in the tarball is not valid JSON ({exc})") from exc


def check_image(arch: str, os_name: str, user: str, architecture: str | None = None) -> None:
    """The platform and user rules, shared by the offline and the post-load check."""
    want = architecture or host_architecture()
    if arch != want:
        raise ImageRefused(f"the image is built for {arch or 'an unknown architecture'}; this platform runs {want}")
    if os_name and os_name != "linux":
        raise ImageRefused(f"the image is built for {os_name}; only linux images run here")
    if is_root_user(user):
        shown = f"USER {user}" if user else "no USER"
        raise ImageRefused(f"the image runs as root ({shown}); add a non-root USER to the Dockerfile, e.g. USER 1000")


def _is_numeric_user(user: str) -> bool:
    return numeric_user_ids(user) is not None


def load_image(
    client: Any, tarball: Path, *, max_bytes: int, architecture: str | None = None, numeric_user: bool = False
) -> AcceptedImage:
    """Check, load (``images.load``) and re-check a tarball; ``client`` is a ``docker.DockerClient``.

    Refused after loading (the engine disagreed with the manifest), the image is removed again.
    """
    import docker.errors

    manifest = read_manifest(tarball, max_bytes=max_bytes, architecture=architecture, numeric_user=numeric_user)
    for tag in manifest.repo_tags:
        try:
            existing = client.images.get(tag)
        except docker.errors.ImageNotFound:
            continue
        if existing.id != manifest.config_digest:
            raise ImageRefused(f"the tag {tag} already names another image here; save the image under another name")
    try:
        client.images.get(manifest.config_digest)
        preexisting = True
    except docker.errors.ImageNotFound:
        preexisting = False
    with open(tarball, "rb") as handle:
        try:
            images = client.images.load(handle)
        except docker.errors.APIError as exc:
            raise ImageRefused(f"the engine could not load the image: {exc.explanation or exc}") from exc
    if len(images) != 1:
        raise ImageRefused(f"the tarball must hold exactly one image, not {len(images)}")
    image = images[0]
    attrs = image.attrs
    try:
        if image.id != manifest.config_digest:
            raise ImageRefused("the loaded image is not the one the tarball's manifest describes")
        check_image(
            attrs.get("Architecture", ""),
            attrs.get("Os", ""),
            (attrs.get("Config") or {}).get("User") or "",
            architecture,
        )
        size = int(attrs.get("Size") or 0)
        if size > max_bytes:
            raise ImageRefused(f"the image is {_mib(size)} once loaded; the limit is {_mib(max_bytes)}")
    except ImageRefused:
        if not preexisting:
            client.images.remove(image.id, force=True)
        raise
    return AcceptedImage(
        reference=image.id,
        digest=image.id,
        user=(attrs.get("Config") or {}).get("User") or "",
        architecture=attrs.get("Architecture", ""),
        size_bytes=size,
        tags=tuple(image.tags),
        preexisting=preexisting,
    )


def release_image(client: Any, image: AcceptedImage) -> None:
    """Remove a participant image after its run, unless it was on the engine before it was uploaded.

    (A participant could upload a copy of the host's environment image; removing it would break the phase.)
    """
    import docker.errors

    if image.preexisting:
        return
    try:
        client.images.remove(image.reference, force=True)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:  # still used by another run: its own release will remove it
        if exc.status_code != 409:
            raise
