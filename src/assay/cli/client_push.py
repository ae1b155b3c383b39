"""``assay push IMAGE:TAG --phase P``: submit a local Docker image to a docker-based phase.

The image is exported with the Docker SDK (as ``docker save`` would) into a private temporary
folder, checked with the very rules the worker applies (:func:`~assay.evaluation.containers.intake.read_manifest`:
size, one image, architecture, non-root ``USER``) so a refusal comes at once rather than after a queue
wait, then sent through the resumable upload of ``assay submit``. The tarball is deleted afterwards,
whatever happened (Ctrl-C included).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn, TransferSpeedColumn

from . import client_participant as participant
from .client_config import ApiError, client, fail
from .output import err_console
from .phase_lookup import ChallengeOpt, PhaseOpt, phase_id

#: When the server does not say (older servers): the architecture nearly every worker runs.
DEFAULT_ARCH = "amd64"


def image_file_name(reference: str) -> str:
    """``<repo>-<tag>.tar`` with only ``[A-Za-z0-9._-]``: the server keeps the name, so it must be a safe one."""
    ref = reference.strip()
    if re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", ref):  # an image ID: no repository to name it by
        repo, tag = "image", ref.removeprefix("sha256:")[:12]
    elif "@" in ref:
        repo, _, digest = ref.partition("@")
        tag = digest.partition(":")[2][:12] or digest
    else:
        repo, tag = _split_tag(ref)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{repo}-{tag}")
    stem = re.sub(r"-{2,}", "-", stem).strip("-.")[:200] or "image"
    return f"{stem}.tar"


def _split_tag(ref: str) -> tuple[str, str]:
    """``repo:tag`` → (repo, tag); a colon before the last ``/`` is a registry port, not a tag."""
    head, _, last = ref.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return (f"{head}/{name}" if head else name), tag
    return ref, "latest"


def _engine() -> Any:
    """A Docker client that answers, or a clear exit: the SDK is an optional extra and the engine may be off."""
    try:
        import docker
        import docker.errors
    except ImportError:
        err_console.print(
            "[red]✗ the Docker SDK is not installed[/red]: pip install '.\\[containers]' in Assay's checkout"
        )
        raise typer.Exit(2) from None
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except docker.errors.DockerException as exc:
        err_console.print(f"[red]✗ no Docker engine answers[/red] ({escape(str(exc))})")
        err_console.print("  [dim]→ start Docker (or set DOCKER_HOST to a running engine) and try again[/dim]")
        raise typer.Exit(2) from None
    return engine


def find_image(engine: Any, reference: str) -> Any:
    """The local image ``reference`` names; nothing is pulled (the image you tested is the one you send)."""
    import docker.errors

    try:
        return engine.images.get(reference)
    except docker.errors.ImageNotFound:
        err_console.print(f"[red]✗ no image {escape(repr(reference))} on this Docker engine[/red]")
        err_console.print("  [dim]→ build it (docker build -t IMAGE:TAG .) or pick one from docker images[/dim]")
        raise typer.Exit(1) from None
    except docker.errors.APIError as exc:
        err_console.print(
            f"[red]✗ Docker could not find {escape(repr(reference))}: {escape(str(exc.explanation or exc))}[/red]"
        )
        raise typer.Exit(1) from None


def precheck(attrs: dict[str, Any], *, max_bytes: int | None, architecture: str) -> None:
    """The worker's rules on what ``docker inspect`` says, before spending minutes on an export."""
    from assay.evaluation.containers.intake import ImageRefused, check_image

    config = attrs.get("Config") or {}
    check_image(
        str(attrs.get("Architecture") or ""), str(attrs.get("Os") or ""), config.get("User") or "", architecture
    )
    size = int(attrs.get("Size") or 0)
    if max_bytes is not None and size > max_bytes:
        raise ImageRefused(f"the image is {size / 1024**2:.1f} MiB; the limit is {max_bytes / 1024**2:.1f} MiB")


def export_image(image: Any, reference: str, target: Path, quiet: bool = False) -> Path:
    """Stream ``docker save`` of ``image`` into ``target``, keeping ``reference`` as its tag in the manifest."""
    wanted = reference if ":" in reference.rpartition("/")[2] else f"{reference}:latest"
    named: str | bool = wanted if wanted in image.tags else True
    estimate = int(image.attrs.get("Size") or 0) or None  # the tarball adds headers; grown when passed
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, disable=quiet) as bar, target.open("wb") as out:
        task = bar.add_task(f"exporting {escape(reference)}", total=estimate)
        written = 0
        for chunk in image.save(named=named):
            out.write(chunk)
            written += len(chunk)
            if estimate is not None and written > estimate:
                estimate = written
            bar.update(task, completed=written, total=estimate)
        bar.update(task, completed=written, total=written)
    return target


def _phase_challenge(api: Any, phase: int | str) -> dict[str, Any]:
    """The phase's challenge, so a phase that takes no images is refused before the export."""
    found = api.get(f"/phases/{phase}")
    return api.get(f"/challenges/{found['challenge']}")


def push(
    image: Annotated[str, typer.Argument(help="A local image, e.g. my-agent:1 (docker images lists them).")],
    phase: PhaseOpt,
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="Show it on the public leaderboard?")
    ] = None,
    method_name: Annotated[str, typer.Option(help="Your method's name.")] = "",
    method_description: Annotated[str, typer.Option(help="A few words about it.")] = "",
    project_url: Annotated[str, typer.Option()] = "",
    publication_url: Annotated[str, typer.Option()] = "",
    meta: Annotated[list[str] | None, typer.Option(help="NAME=VALUE of a phase's meta attribute (repeat).")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "--follow", "-w", help="Follow the evaluation live until its result.")
    ] = False,
    arch: Annotated[
        str | None, typer.Option("--arch", help="The architecture the challenge's workers run (default: the server's).")
    ] = None,
    challenge_id: ChallengeOpt = None,
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Export a local Docker image, check it as the worker will, and submit it (resumable, like assay submit).

    The tarball goes to a private folder under TMPDIR (set it when that is too small), deleted afterwards.
    Nothing is pulled: the image you tested locally is the one you send.
    """
    from assay.evaluation.containers.intake import ImageRefused, read_manifest  # not on every CLI start

    participant.parse_meta(meta)  # a bad --meta is said before a long export, not after it
    api = client(server)
    try:
        phase = str(phase_id(api, phase, challenge_id))
        challenge = _phase_challenge(api, phase)
    except ApiError as exc:
        raise fail(exc) from None
    if challenge.get("is_docker_based") is False:
        err_console.print(
            f"[red]✗ challenge {escape(repr(challenge.get('title', '')))} does not take container images[/red]"
        )
        err_console.print(f"  [dim]→ submit a file instead: assay submit FILE --phase {phase}[/dim]")
        raise typer.Exit(1)
    limit = challenge.get("max_docker_image_size")  # checked here when the server exposes it
    max_bytes = int(limit) if isinstance(limit, int) and limit > 0 else None
    arch = arch or challenge.get("container_architecture") or DEFAULT_ARCH
    engine = _engine()
    found = find_image(engine, image)
    workdir = Path(tempfile.mkdtemp(prefix="assay-push-"))  # mode 700: the image may hold private weights
    try:
        try:
            precheck(found.attrs, max_bytes=max_bytes, architecture=arch)
            tarball = export_image(found, image, workdir / image_file_name(image), quiet=as_json)
            read_manifest(tarball, max_bytes=max_bytes or sys.maxsize, architecture=arch)
        except ImageRefused as exc:
            err_console.print(f"[red]✗ {escape(image)} cannot be submitted: {escape(str(exc))}[/red]")
            raise typer.Exit(1) from None
        except OSError as exc:  # the disk filled up, or the folder vanished
            err_console.print(f"[red]✗ could not export {escape(image)} to {workdir}: {escape(str(exc))}[/red]")
            raise typer.Exit(1) from None
        except _docker_errors() as exc:
            reason = getattr(exc, "explanation", None) or exc
            err_console.print(f"[red]✗ Docker could not export {escape(image)}: {escape(str(reason))}[/red]")
            raise typer.Exit(1) from None
        participant.submit(
            tarball, phase, public=public, method_name=method_name, method_description=method_description,
            project_url=project_url, publication_url=publication_url, meta=meta, wait=wait, server=server,
            as_json=as_json,
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _docker_errors() -> tuple[type[Exception], ...]:
    """The engine's refusals and a stream cut mid-export (the SDK lets the latter through as ``requests`` errors)."""
    import docker.errors
    import requests.exceptions

    return docker.errors.DockerException, requests.exceptions.RequestException
