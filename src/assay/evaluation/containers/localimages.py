"""Tiny Linux images built on this machine from busybox-static, for tests and the demo.

No registry is needed (none may be reachable): each image is ``docker import`` of a ~2 MB rootfs
(``/bin/busybox`` with its applet links, ``/tmp`` 1777, an ``/etc/passwd`` with user 1000, and any
extra files), with ``USER``/``CMD`` set by import changes. Images are cached by tag, so callers
version their tags (bump it when the content changes) and a second run builds nothing.

Needs the ``docker`` SDK (``assay[containers]``), imported when a function needs it.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The statically linked busybox the rootfs is made of (Debian: ``apt-get install busybox-static``).
BUSYBOX = Path(os.environ.get("ASSAY_BUSYBOX", "/bin/busybox"))
_PASSWD = "root:x:0:0::/root:/bin/sh\nplayer:x:1000:1000::/tmp:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
_GROUP = "root:x:0:\nplayer:x:1000:\nnogroup:x:65534:\n"


def engine(timeout: float = 60) -> Any | None:
    """A ``docker.DockerClient`` when the SDK is installed and an engine answers, else ``None``."""
    try:
        import docker
        import docker.errors
    except ImportError:
        return None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException:
        return None


def busybox_rootfs(files: Mapping[str, bytes] | None = None, *, busybox: Path | None = None) -> bytes:
    """The rootfs tarball: busybox, its applets as symlinks, /tmp 1777, users root/player(1000)/nobody.

    ``files`` adds regular files (path inside the image → content), mode 0755 so scripts can run;
    their folders are created as needed.
    """
    busybox = busybox or BUSYBOX
    listing = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folders: set[str] = set()

        def add(name: str, *, mode: int = 0o755, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                folders.add(name)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "etc", "input", "output"):
            add(folder)
        add("tmp", mode=0o1777)
        add("bin/busybox", data=busybox.read_bytes())
        for applet in listing:
            if applet != "busybox":
                add(f"bin/{applet}", link="busybox")
        add("etc/passwd", mode=0o644, data=_PASSWD.encode())
        add("etc/group", mode=0o644, data=_GROUP.encode())
        for path, content in (files or {}).items():
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    add(folder)
            add("/".join(parts), data=content)
    return buf.getvalue()


def build_image(
    client: Any,
    tag: str,
    changes: Sequence[str] = (),
    *,
    files: Mapping[str, bytes] | None = None,
    rootfs: bytes | None = None,
) -> str:
    """Build ``tag`` (``repository:version``) unless the engine has it already; return the image ID.

    ``changes`` are Dockerfile lines ``docker import`` accepts (``USER 1000``, ``CMD [...]``,
    ``ENV``, ``WORKDIR``). ``rootfs`` reuses a :func:`busybox_rootfs` built once for several images
    (then ``files`` is ignored).
    """
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        pass
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        raise ValueError(f"the tag {tag!r} needs a version: repository:version")
    data = rootfs if rootfs is not None else busybox_rootfs(files)
    client.api.import_image_from_data(data, repository=repository, tag=version, changes=list(changes))
    return str(client.images.get(tag).id)


def save_image(client: Any, tag: str, target: Path) -> Path:
    """``docker save`` one image to a tarball, as a participant would upload it (written whole or not at all)."""
    target = Path(target)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as handle:
        for chunk in client.images.get(tag).save(named=True):
            handle.write(chunk)
    partial.replace(target)
    return target
