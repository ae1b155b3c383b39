"""``assay models push|list|show|submit``: a model registered once, submitted to many phases.

``push`` sends a file — a ``docker save`` tarball, a code bundle (.zip), or a local Docker image it exports
first, as ``assay push`` does — as a new model (its first version) or, when your team already has a model of
that name, as its next version. ``submit`` sends no file: the server submits the stored version to the phase,
through the same checks and limits as any submission.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from . import client_participant as participant
from .client_config import ApiError, Client, client, fail
from .output import console, emit_json, err_console, plain
from .phase_lookup import ChallengeOpt, PhaseOpt, phase_id

app = typer.Typer(help="Models: registered once, versioned, submitted to many phases.", no_args_is_help=True)
IMAGE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: A push waits this long for the server's answer: it reads an image's index or a bundle's entries and stores it.
PUSH_TIMEOUT = 3600.0


def kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        return "image"
    if name.endswith(".zip"):
        return "code_bundle"
    err_console.print(
        f"[red]✗ {escape(path.name)} is neither an image tarball (.tar, .tar.gz, .tgz) nor a code bundle (.zip)[/red]"
    )
    raise typer.Exit(2)


def find_model(api: Client, name: str, team: int | None) -> dict | None:
    """Your team's model of that name (the server's list holds your teams' models and published ones)."""
    teams = {t["id"] for t in api.all_pages("/teams")} if team is None else {team}
    for model in api.all_pages("/models"):
        if model["name"] == name and model["team"] in teams:
            return model
    return None


def _send(api: Client, path: Path, name: str, team: int | None, label: str, notes: str, card: dict | None) -> dict:
    existing = find_model(api, name, team)
    upload_api = Client(api.server, timeout=PUSH_TIMEOUT)
    with path.open("rb") as fh:
        files = {"file": (path.name, fh, "application/octet-stream")}
        if existing is not None:
            version = upload_api.post(
                f"/models/{existing['id']}/versions", data={"label": label, "notes": notes}, files=files
            )
            if card:
                upload_api.request("PATCH", f"/models/{existing['id']}", json=card)
            return {**api.get(f"/models/{existing['id']}"), "pushed": version}
        data = {"name": name, "kind": kind_of(path), "label": label, "notes": notes, "card": json.dumps(card or {})}
        if team is not None:
            data["team"] = str(team)
        model = upload_api.post("/models", data=data, files=files)
        return {**model, "pushed": model["versions"][0]}


def push(
    source: Annotated[
        str, typer.Argument(help="A tarball (.tar/.tar.gz/.tgz), a code bundle (.zip), or a local Docker image.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="The model's name (a new version if your team has it).")],
    team: Annotated[int | None, typer.Option(help="Your team's id (default: your only team).")] = None,
    label: Annotated[str, typer.Option(help="Your name for this version, e.g. 1.2.0.")] = "",
    notes: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    card: Annotated[
        Path | None, typer.Option(help="The model card: a JSON file of its fields (intended_use, data_sources, …).")
    ] = None,
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Register a model (or add a version to your team's model of that name) from a file or a local image."""
    card_fields: dict[str, Any] | None = None
    if card is not None:
        try:
            card_fields = json.loads(card.read_text())
        except (OSError, ValueError) as exc:
            err_console.print(f"[red]✗ cannot read the card {escape(str(card))}: {escape(str(exc))}[/red]")
            raise typer.Exit(2) from None
    api = client(server)
    path = Path(source)
    workdir = None
    try:
        if not path.is_file():  # a local Docker image: exported as `assay push` does, checked on the server
            from .client_push import _engine, export_image, find_image, image_file_name

            engine = _engine()
            found = find_image(engine, source)
            workdir = Path(tempfile.mkdtemp(prefix="assay-model-"))
            path = export_image(found, source, workdir / image_file_name(source), quiet=as_json)
        result = _send(api, path, name, team, label, notes, card_fields)
    except ApiError as exc:
        raise fail(exc) from None
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        emit_json(result)
        return
    v = result["pushed"]
    pinned = v["image_digest"] or f"sha256:{v['file_sha256']}"
    console.print(f"[green]✓ {plain(result['name'])} v{v['number']}[/green] (model {result['id']}) {plain(pinned)}")
    console.print(f"[dim]submit it: assay models submit {result['id']} --phase PHASE[/dim]")


def list_models(server: participant.ServerOpt = None, as_json: participant.JsonOpt = False) -> None:
    """Your teams' models and the published ones."""
    api = client(server)
    try:
        models = api.all_pages("/models")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(models)
        return
    rows = [
        [m["id"], m["name"], m["team_name"], m["kind"], "published" if m["is_published"] else "private",
         ", ".join(f"v{v['number']}" for v in m["versions"])]
        for m in models
    ]  # fmt: skip
    participant._table("Models", ["id", "name", "team", "kind", "visibility", "versions"], rows)


def show(
    model: Annotated[int, typer.Argument(help="The model's id (assay models list).")],
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """A model's card, versions and results across benchmarks (those you may see)."""
    api = client(server)
    try:
        data = api.get(f"/models/{model}")
        results = api.all_pages(f"/models/{model}/results")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json({**data, "results": results})
        return
    console.print(f"[bold]{plain(data['name'])}[/bold] ({data['kind']}) of {plain(data['team_name'])}")
    for field in ("summary", "intended_use", "output_significance", "data_sources", "licence", "contact"):
        if data.get(field):
            console.print(f"  {field}: {plain(data[field])}")
    participant._table(
        "Versions", ["version", "label", "sha256", "image digest"],
        [[f"v{v['number']}", v["label"], v["file_sha256"], v["image_digest"]] for v in data["versions"]],
    )  # fmt: skip
    participant._table(
        "Results", ["submission", "version", "challenge", "phase", "status", "scores"],
        [[r["submission"], f"v{r['version']}", r["challenge_title"], r["phase_codename"], r["status"],
          json.dumps((r["output"] or {}).get("result"))] for r in results],
    )  # fmt: skip


def submit(
    model: Annotated[int, typer.Argument(help="The model's id (assay models list).")],
    phase: PhaseOpt,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Its version number (default: the newest).")
    ] = None,
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="Show it on the public leaderboard?")
    ] = None,
    method_name: Annotated[str, typer.Option(help="Default: the model's name and version.")] = "",
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the evaluation live until its result.")] = False,
    challenge: ChallengeOpt = None,
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Submit a registered model version to a phase: nothing is uploaded, the server uses the stored version."""
    api = client(server)
    try:
        number = version or max(v["number"] for v in api.get(f"/models/{model}")["versions"])
        body = {"phase": phase_id(api, phase, challenge), "is_public": public, "method_name": method_name}
        sub = api.post(f"/models/{model}/versions/{number}/submit", json=body)
    except ApiError as exc:
        raise fail(exc) from None
    if not as_json:
        console.print(f"[green]✓ model {model} v{number} submitted[/green] as submission {sub['id']} ({sub['status']})")
    if wait:
        sub = participant.follow(api, sub["id"], quiet=as_json)
    if as_json:
        emit_json(sub)
    if wait and sub["status"] == "failed":
        raise typer.Exit(1)


app.command("push")(push)
app.command("list")(list_models)
app.command("show")(show)
app.command("submit")(submit)
