"""Container-image submissions of docker-based challenges, checked when they arrive.

A participant who uploads a root image, one built for another architecture or one over the
bundle's ``max_docker_image_size`` hears so at once instead of after a queue wait. Only the
tarball's index and image config are read (``assay.evaluation.containers.intake``); nothing is
loaded into an engine here — the worker loads and checks the image again before it runs.

Instead of a tarball, EvalAI's ``evalai push`` submits ``{"submitted_image_uri": "<registry>/<repo>:<tag>"}``
as ``submission.json``. Assay takes such a reference only for a registry the operator lists in
``ASSAY_CONTAINER_REGISTRIES`` (any other registry could serve a different image at each pull), only in
the submitting team's own repository (``<challenge>-participant-team-<team id>``, EvalAI's naming: no
team submits another's image), and resolves its tag to the manifest digest at once: the digest is kept
as the submission's ``image_digest`` and workers pull ``<registry>/<repo>@sha256:…``, so a tag moved
after the deadline changes nothing.

A static-dataset phase also takes a **code bundle**: a ``.zip`` with ``run.sh`` or ``main.py`` at its
root, run by workers in the bubblewrap process sandbox where no Docker exists (docs/containers.md,
"Code bundles"). It is checked here without unpacking it (no control characters, ``..``, absolute paths,
links or special files, an entry point, a bounded unpacked size); its ``image_digest`` stays empty.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import zipfile
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.db.models import Q

from assay.evaluation.containers.intake import ImageRefused, host_architecture, read_manifest
from assay.evaluation.containers.process_backend import ENTRY_POINTS
from assay.evaluation.safezip import (
    UnsafeZipError,
    checked_entry_is_folder,
    checked_entry_path,
    checked_entry_readable,
)
from assay.server.challenges.models import Challenge, ChallengePhase

from .errors import SubmissionError

if TYPE_CHECKING:
    from ..models import Submission

IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
REFERENCE_SUFFIX = ".json"
CODE_BUNDLE_SUFFIX = ".zip"
#: Files a code bundle may hold (the worker's unpacker allows as many).
MAX_CODE_ENTRIES = 20000
#: A bundle may unpack to at most this many times its zip's size (beyond a small allowance): a zip bomb
#: declares gigabytes in a few kilobytes. The phase's ``max_docker_image_size`` caps the total as well.
MAX_CODE_EXPANSION = 100
CODE_EXPANSION_ALLOWANCE = 256 * 1024**2
MAX_REFERENCE_BYTES = 64 * 1024
# <host[:port]>/<path>[:tag][@sha256:<64 hex>] — the grammar of docker's reference package, simplified.
_REFERENCE = re.compile(
    r"^(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<path>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TEAM_REPOSITORY = "{prefix}-participant-team-{team_id}"
RESOLVE_TIMEOUT = 10.0  # seconds; a submit waits for the registry's answer
# Everything `docker push` may have stored under a tag: single-platform manifests and multi-platform indexes.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


@dataclass(frozen=True)
class ImageReference:
    """A parsed ``submitted_image_uri``: ``<registry>/<repository>[:<tag>][@<digest>]``."""

    uri: str
    registry: str
    repository: str
    tag: str
    digest: str

    def pinned(self, digest: str) -> str:
        """The reference a worker pulls: the repository at that manifest digest, whatever the tag says now."""
        return f"{self.registry}/{self.repository}@{digest}"


def container_kind(challenge: Challenge) -> str | None:
    """``static_dataset`` or ``environment`` for docker-based challenges, else None (a prediction file)."""
    if not challenge.is_docker_based:
        return None
    return "static_dataset" if challenge.is_static_dataset_code_upload else "environment"


def container_architecture() -> str:
    """What images must be built for: the operator's setting, else this server's own machine."""
    return settings.CONTAINER_ARCHITECTURE or host_architecture()


def takes_code_bundles(challenge: Challenge | None) -> bool:
    """Only static-dataset phases run code bundles: an agent needs the environment's private network."""
    return challenge is not None and container_kind(challenge) == "static_dataset"


def accepted_suffixes(challenge: Challenge | None = None) -> tuple[str, ...]:
    suffixes = IMAGE_SUFFIXES + ((REFERENCE_SUFFIX,) if settings.CONTAINER_REGISTRIES else ())
    return suffixes + ((CODE_BUNDLE_SUFFIX,) if takes_code_bundles(challenge) else ())


def allowed_name(file_name: str, challenge: Challenge | None = None) -> bool:
    return file_name.lower().endswith(accepted_suffixes(challenge))


def describe_accepted(challenge: Challenge | None = None) -> str:
    kinds = "a docker save tarball (.tar, .tar.gz or .tgz)"
    if settings.CONTAINER_REGISTRIES:
        kinds += f", or a submission.json naming an image in {', '.join(settings.CONTAINER_REGISTRIES)}"
    if takes_code_bundles(challenge):
        kinds += f", or a code bundle (.zip with {' or '.join(ENTRY_POINTS)} at its root)"
    return kinds


def is_code_bundle(sub: Submission) -> bool:
    """Whether a submission is a code bundle (the same rule as :func:`code_bundles` for querysets)."""
    return (
        takes_code_bundles(sub.phase.challenge)
        and sub.input_file_name.lower().endswith(CODE_BUNDLE_SUFFIX)
        and not sub.image_digest
    )


def code_bundles() -> Q:
    """Submissions that are code bundles: these need no Docker, so any worker with bwrap may run them."""
    return Q(
        phase__challenge__is_docker_based=True,
        phase__challenge__is_static_dataset_code_upload=True,
        input_file_name__iendswith=CODE_BUNDLE_SUFFIX,
        image_digest="",
    )


def check_code_bundle(file: IO[bytes], *, max_bytes: int) -> None:
    """Refuse a code bundle the worker could not unpack safely or could not start, without unpacking it.

    The names and kinds are :mod:`assay.evaluation.safezip`'s rules. Sizes come from the zip's central
    directory: Python's ``zipfile`` (the worker's unpacker) never yields more than an entry declares,
    so their sum bounds what a worker writes, and a bomb must declare its size to be one.
    """

    def refuse(why: str) -> SubmissionError:
        return SubmissionError("code_bundle_refused", why, 400)

    size = file.seek(0, 2)
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise refuse("the file is not a readable zip (a code bundle is a .zip with run.sh or main.py)") from None
    finally:
        file.seek(0)
    if len(infos) > MAX_CODE_ENTRIES:
        raise refuse(f"the zip holds {len(infos)} entries, more than {MAX_CODE_ENTRIES}")
    total, root = 0, set()
    for info in infos:
        try:
            rel = checked_entry_path(info.filename)
            folder = checked_entry_is_folder(info)
            if rel is not None and not folder:
                checked_entry_readable(info)  # the worker could not unpack it
        except UnsafeZipError as exc:
            raise refuse(str(exc)) from None
        if rel is None or folder:
            continue
        total += info.file_size
        if len(rel.parts) == 1:
            root.add(rel.name)
    if total > max_bytes:
        raise refuse(f"the zip unpacks to {total} bytes, more than the phase's limit of {max_bytes}")
    if total > CODE_EXPANSION_ALLOWANCE and total > MAX_CODE_EXPANSION * size:
        raise refuse(f"the zip unpacks to {total} bytes, more than {MAX_CODE_EXPANSION} times its size (a zip bomb?)")
    if not root & set(ENTRY_POINTS):
        names = " or ".join(ENTRY_POINTS)
        raise refuse(f"the zip has no {names} at its root (zip the folder's contents, not the folder)")


def check_submission(phase: ChallengePhase, file: IO[bytes], file_name: str, *, team_id: int | None = None) -> str:
    """The image's digest, or :class:`SubmissionError`.

    A tarball's is its image ID; a registry reference's is the manifest digest its tag names right
    now (asked of the registry). A reference must be in team ``team_id``'s own repository; without a
    team it is refused, so a caller that forgets to say whose submission it is cannot open the door.
    A code bundle has no digest (``""``): it is checked for what its worker needs.
    """
    if file_name.lower().endswith(CODE_BUNDLE_SUFFIX):
        if not takes_code_bundles(phase.challenge):
            raise SubmissionError(
                "code_bundle_refused", "code bundles (.zip) run only in static-dataset phases; submit an image", 400
            )
        check_code_bundle(file, max_bytes=phase.challenge.max_docker_image_size)
        return ""
    if file_name.lower().endswith(REFERENCE_SUFFIX):
        reference = parse_reference(file)
        check_team_repository(phase.challenge, reference, team_id)
        digest = resolve_digest(reference)
        check_pushed_size(reference, digest, max_bytes=phase.challenge.max_docker_image_size)
        return digest
    challenge = phase.challenge
    try:
        manifest = read_manifest(file, max_bytes=challenge.max_docker_image_size, architecture=container_architecture())
    except ImageRefused as exc:
        raise SubmissionError("image_refused", str(exc), 400) from None
    return manifest.config_digest


def read_reference(file: IO[bytes]) -> dict[str, Any]:
    """``{"reference", "digest"}`` of a ``submission.json``, checked against the operator's registries."""
    reference = parse_reference(file)
    return {"reference": reference.uri, "digest": reference.digest}


def parse_reference(file: IO[bytes], *, check_registry: bool = True) -> ImageReference:
    """``{"submitted_image_uri": …}`` parsed and (unless told otherwise) checked against the operator's registries."""
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
    if check_registry and match["registry"] not in settings.CONTAINER_REGISTRIES:
        raise SubmissionError(
            "image_refused",
            f"images are taken only from {', '.join(settings.CONTAINER_REGISTRIES) or 'no registry'};"
            f" {match['registry']} is not one of them (upload a docker save tarball instead)",
            400,
        )
    return ImageReference(uri.strip(), match["registry"], match["path"], match["tag"] or "", match["digest"] or "")


def repository_prefix(challenge: Challenge) -> str:
    """The challenge part of its teams' repository names: its slug in docker's repository grammar."""
    slug = re.sub(r"[^a-z0-9]+", "-", (challenge.slug or "").lower()).strip("-")[:120].strip("-")
    return slug or f"challenge-{challenge.pk}"


def team_repository(challenge: Challenge, team_id: int) -> str:
    """The one repository a team's images of this challenge come from (EvalAI's ECR naming)."""
    return TEAM_REPOSITORY.format(prefix=repository_prefix(challenge), team_id=team_id)


def check_team_repository(challenge: Challenge, reference: ImageReference, team_id: int | None) -> None:
    """Refuse a reference outside the submitting team's own repository: a team could otherwise submit
    an image another team pushed (its tag is in the other team's submissions for everyone to copy)."""
    if team_id is None:
        raise SubmissionError("image_refused", "an image reference is only taken from a known participant team", 400)
    own = team_repository(challenge, team_id)
    if reference.repository != own:
        raise SubmissionError(
            "image_refused",
            f"images are taken only from your team's own repository {reference.registry}/{own};"
            f" {reference.repository} is not it (push with: evalai push IMAGE:TAG -p PHASE -u {reference.registry})",
            400,
        )


def _is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def manifest_url(reference: ImageReference) -> str:
    """HTTPS, except for a registry on this machine: docker itself talks plain HTTP to 127.0.0.0/8."""
    scheme = "http" if _is_loopback(reference.registry) else "https"
    target = reference.digest or reference.tag or "latest"
    return f"{scheme}://{reference.registry}/v2/{reference.repository}/manifests/{target}"


def resolve_digest(reference: ImageReference, *, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The manifest digest the registry serves for the reference now (a pinned one: confirmed to exist).

    Asked at submit time so the submission names content, not a tag its owner could move later, and
    so a typo or an unfinished push is refused while the participant is still there to hear it.
    """
    shown = f"{reference.registry}/{reference.repository}" + (
        f"@{reference.digest}" if reference.digest else f":{reference.tag or 'latest'}"
    )
    url = manifest_url(reference)
    headers = {"Accept": MANIFEST_TYPES}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            response = http.head(url, headers=headers)
            digest = response.headers.get("Docker-Content-Digest", "")
            if response.status_code == 200 and not digest:  # not every registry says it on HEAD
                response = http.get(url, headers=headers)  # an operator's registry: manifests are small
                digest = (
                    response.headers.get("Docker-Content-Digest")
                    or f"sha256:{hashlib.sha256(response.content).hexdigest()}"
                )
    except httpx.HTTPError as exc:
        raise SubmissionError(
            "registry_unavailable",
            f"the registry {reference.registry} did not answer ({type(exc).__name__}: {str(exc)[:200]}),"
            f" so {shown} cannot be checked now; submit again when it is up",
            400,
        ) from None
    if response.status_code == 404:
        raise SubmissionError(
            "image_not_found", f"{shown} is not in the registry (push it first, then submit that tag)", 400
        )
    if response.status_code in (401, 403):
        raise SubmissionError(
            "registry_refused",
            f"the registry {reference.registry} does not let this server read {shown} (HTTP {response.status_code});"
            " the operator must allow it",
            400,
        )
    if response.status_code != 200:
        raise SubmissionError(
            "registry_unavailable",
            f"the registry {reference.registry} answered HTTP {response.status_code} for {shown}",
            400,
        )
    if not _DIGEST.match(digest):
        raise SubmissionError("registry_unavailable", f"the registry gave no sha256 digest for {shown}", 400)
    if reference.digest and digest != reference.digest:
        raise SubmissionError("image_refused", f"the registry serves {digest} for {shown}, not that digest", 400)
    return digest


def check_pushed_size(
    reference: ImageReference, digest: str, *, max_bytes: int, timeout: float = RESOLVE_TIMEOUT
) -> None:
    """Refuse at submit time an image whose compressed layers alone exceed the limit, or with no variant
    for the workers' platform, rather than let a worker pull gigabytes to find out.

    Compressed sizes are a lower bound of the unpacked image, so nothing within the limit is refused here;
    the worker still checks the unpacked size. A manifest this cannot read skips the check.
    """
    architecture = container_architecture()
    shown = reference.pinned(digest)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            document = _manifest(http, reference, digest)
            variants = document.get("manifests") if isinstance(document, dict) else None
            if isinstance(variants, list):  # a multi-platform index: the workers' variant counts
                wanted = [
                    m for m in variants
                    if isinstance(m, dict) and (m.get("platform") or {}).get("architecture") == architecture
                    and (m.get("platform") or {}).get("os", "linux") == "linux"
                ]  # fmt: skip
                if not wanted:
                    found = sorted(
                        {str((m.get("platform") or {}).get("architecture")) for m in variants if isinstance(m, dict)}
                    )
                    raise SubmissionError(
                        "image_refused",
                        f"{shown} has no linux/{architecture} variant (it has {', '.join(found) or 'none'});"
                        f" build it for {architecture}",
                        400,
                    )
                document = _manifest(http, reference, str(wanted[0].get("digest", "")))
            parts = [document["config"], *document["layers"]]
            total = sum(int(part["size"]) for part in parts)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return
    if total > max_bytes:
        raise SubmissionError(
            "image_refused",
            f"{shown} is {total / 1024**2:.1f} MiB compressed, over the {max_bytes / 1024**2:.1f} MiB limit",
            400,
        )


def _manifest(http: httpx.Client, reference: ImageReference, digest: str) -> Any:
    if not _DIGEST.match(digest):
        raise ValueError("no digest")
    response = http.get(manifest_url(replace(reference, digest=digest, tag="")), headers={"Accept": MANIFEST_TYPES})
    response.raise_for_status()
    if len(response.content) > 4 * 1024**2:
        raise ValueError("implausibly large manifest")
    return json.loads(response.content)


def job_reference(sub: Submission) -> str:
    """What a worker pulls for a reference submission: its repository pinned to the digest resolved at submit.

    The registry is not checked against the list again: the digest already fixes the content.
    """
    with sub.input_file.open("rb") as fh:
        reference = parse_reference(fh, check_registry=False)
    return reference.pinned(sub.image_digest) if sub.image_digest else reference.uri
