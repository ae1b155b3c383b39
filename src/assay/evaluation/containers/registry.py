"""Accepting a participant's image from a registry (``evalai push``), with the same rules as a tarball.

The server pins every registry submission to its manifest digest when it is submitted, so a worker
pulls ``<registry>/<repository>@sha256:…`` and gets exactly the content that was submitted, whatever
the tag names by then. Only pinned references are pulled here. After the pull the image must pass
:func:`~assay.evaluation.containers.intake.check_image` (architecture, Linux, non-root ``USER``) and the
phase's size limit, as :func:`~assay.evaluation.containers.intake.load_image` demands of a tarball; a
refused image is removed again unless this engine held it before (it may be the host's own image).

A pull by digest adds no tag, so it cannot take over a tag naming another image on this engine.
"""

from __future__ import annotations

import re
from typing import Any

from .contract import numeric_user as numeric_user_ids
from .intake import AcceptedImage, ImageRefused, _mib, check_image

_PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def pull_image(
    client: Any, reference: str, *, max_bytes: int, architecture: str | None = None, numeric_user: bool = False
) -> AcceptedImage:
    """Pull ``<registry>/<repository>@sha256:…`` with ``client`` (a ``docker.DockerClient``) and check it.

    Raises :class:`ImageRefused` with one line: not pinned, not found, not pullable, or a rule it breaks.
    ``numeric_user=True`` also requires a numeric ``USER``, as for images bound for Kubernetes.
    The accepted image is run by its ID (``reference``/``digest`` of the result); release it with
    :func:`~assay.evaluation.containers.intake.release_image`.
    """
    import docker.errors

    if not _PINNED.match(reference):
        raise ImageRefused(f"{reference[:200]} is not pinned to a digest (registry/repository@sha256:…)")
    before = set(client.api.images(all=True, quiet=True))
    try:
        image = client.images.pull(reference)
    except docker.errors.NotFound:
        raise ImageRefused(f"the image {reference} was not found in its registry") from None
    except docker.errors.DockerException as exc:
        detail = getattr(exc, "explanation", None) or str(exc)
        raise ImageRefused(f"the image {reference} could not be pulled: {str(detail)[:300]}") from None
    attrs = image.attrs
    user = str((attrs.get("Config") or {}).get("User") or "")
    size = int(attrs.get("Size") or 0)
    preexisting = image.id in before
    try:
        check_image(attrs.get("Architecture", ""), attrs.get("Os", ""), user, architecture)
        if numeric_user and numeric_user_ids(user) is None:
            raise ImageRefused(f"the image's USER {user} must be numeric here (e.g. USER 1000), not a name")
        if size > max_bytes:
            raise ImageRefused(f"the image is {_mib(size)} once pulled; the limit is {_mib(max_bytes)}")
    except ImageRefused:
        if not preexisting:
            client.images.remove(image.id, force=True)
        raise
    return AcceptedImage(
        reference=image.id,
        digest=image.id,
        user=user,
        architecture=attrs.get("Architecture", ""),
        size_bytes=size,
        tags=tuple(image.tags),
        preexisting=preexisting,
    )
