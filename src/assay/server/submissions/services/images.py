"""Container-image submissions of docker-based challenges, checked when they arrive.

A participant who uploads a root image, one built for another architecture or one over the
bundle's ``max_docker_image_size`` hears so at once instead of after a queue wait. Only the
tarball's index and image config are read (``assay.evaluation.containers.intake``); nothing is
loaded into an engine here — the worker loads and checks the image again before it runs.

Instead of a tarball, EvalAI's ``evalai push`` submits ``{"submitted_image_uri": "<registry>/<repo>:<tag>"}``
as ``submission.json``. Assay takes such a reference only for a registry the operator lists in
``ASSAY_CONTAINER_REGISTRIES``: any other registry could serve a different image at each pull.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from django.conf import settings

from assay.evaluation.containers.intake import ImageRefused, host_architecture, read_manifest
from assay.server.challenges.models import Challenge, ChallengePhase

from .errors import SubmissionError

IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
REFERENCE_SUFFIX = ".json"
MAX_REFERENCE_BYTES = 64 * 1024
# <host[:port]>/<path>[:tag][@sha256:<64 hex>] — the grammar of docker's reference package, simplified.
_REFERENCE = re.compile(
    r"^(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<path>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def container_kind(challenge: Challenge) -> str | None:
    """``static_dataset`` or ``environment`` for docker-based challenges, else None (a prediction file)."""
    if not challenge.is_docker_based:
        return None
    return "static_dataset" if challenge.is_static_dataset_code_upload else "environment"


def container_architecture() -> str:
    """What images must be built for: the operator's setting, else this server's own machine."""
    return settings.CONTAINER_ARCHITECTURE or host_architecture()


def accepted_suffixes() -> tuple[str, ...]:
    return IMAGE_SUFFIXES + ((REFERENCE_SUFFIX,) if settings.CONTAINER_REGISTRIES else ())


def allowed_name(file_name: str) -> bool:
    return file_name.lower().endswith(accepted_suffixes())


def describe_accepted() -> str:
    kinds = "a docker save tarball (.tar, .tar.gz or .tgz)"
    if settings.CONTAINER_REGISTRIES:
        kinds += f", or a submission.json naming an image in {', '.join(settings.CONTAINER_REGISTRIES)}"
    return kinds


def check_submission(phase: ChallengePhase, file: IO[bytes], file_name: str) -> str:
    """The image's digest (``sha256:…``; empty for an unpinned reference), or :class:`SubmissionError`."""
    if file_name.lower().endswith(REFERENCE_SUFFIX):
        return _reference_digest(file)
    challenge = phase.challenge
    try:
        manifest = read_manifest(
            file, max_bytes=challenge.max_docker_image_size, architecture=container_architecture()
        )
    except ImageRefused as exc:
        raise SubmissionError("image_refused", str(exc), 400) from None
    return manifest.config_digest


def read_reference(file: IO[bytes]) -> dict[str, Any]:
    """``{"submitted_image_uri": …}`` parsed and checked against the operator's registries."""
    file.seek(0)
    data = file.read(MAX_REFERENCE_BYTES + 1)
    file.seek(0)
    if len(data) > MAX_REFERENCE_BYTES:
        raise SubmissionError("image_refused", "an image reference file is a few bytes of JSON, not this", 400)
    try:
        document = json.loads(data)
    except ValueError:
        raise SubmissionError("image_refused", 'submission.json must be {"submitted_image_uri": "…"}', 400) from None
    uri = document.get("submitted_image_uri") if isinstance(document, dict) else None
    if not isinstance(uri, str):
        raise SubmissionError("image_refused", 'submission.json must be {"submitted_image_uri": "…"}', 400)
    match = _REFERENCE.match(uri.strip())
    if match is None:
        why = f"{uri[:200]!r} is not an image reference (registry/repository:tag)"
        raise SubmissionError("image_refused", why, 400)
    if match["registry"] not in settings.CONTAINER_REGISTRIES:
        raise SubmissionError(
            "image_refused",
            f"images are taken only from {', '.join(settings.CONTAINER_REGISTRIES) or 'no registry'};"
            f" {match['registry']} is not one of them (upload a docker save tarball instead)",
            400,
        )
    return {"reference": uri.strip(), "digest": match["digest"] or ""}


def _reference_digest(file: IO[bytes]) -> str:
    return read_reference(file)["digest"]
