"""Commands that run the server side. Django is imported only when one of them runs."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Annotated

import typer

from assay.bundle import BundleError

from .output import console, emit_json, err_console, print_problems

admin_app = typer.Typer(
    help="Server administration (needs the server installed: pip install 'assay\\[server]').",
    no_args_is_help=True,
)

DEFAULT_DEMO_BUNDLE = "examples/demo-challenge"


def _server():
    try:
        return importlib.import_module("assay.server.commands")
    except ModuleNotFoundError as exc:
        err_console.print(f"[red]The server is not installed ({exc.name} missing):[/red] pip install 'assay\\[server]'")
        raise typer.Exit(2) from None


def _port(port: int | None) -> int:
    return port if port is not None else int(os.environ.get("ASSAY_PORT", "8000"))


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: $ASSAY_PORT or 8000).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply database migrations first.")] = True,
) -> None:
    """Serve the web UI, the API and the admin."""
    server = _server()
    if migrate:
        server.migrate(verbosity=0)
    server.serve(host, _port(port))


def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: $ASSAY_PORT or 8000).")] = None,
    bundle: Annotated[Path, typer.Option(help="The demo challenge bundle.")] = Path(DEFAULT_DEMO_BUNDLE),
) -> None:
    """Set up the demo platform (users admin/host/participant, a demo challenge) and serve it."""
    password = os.environ.get("ASSAY_DEMO_PASSWORD", "demo")
    _server().demo(host, _port(port), password, str(bundle))


def manage(ctx: typer.Context) -> None:
    """Run a Django management command with Assay's settings (migrate, createsuperuser, shell...)."""
    _server().manage(list(ctx.args))


@admin_app.command("import-bundle")
def import_bundle(
    path: Annotated[Path, typer.Argument(help="A bundle zip or folder.")],
    host_team: Annotated[str, typer.Option("--host-team", help="Name of the host team that owns the challenge.")],
    challenge: Annotated[int | None, typer.Option(help="Update this challenge id instead of creating one.")] = None,
    create_team: Annotated[bool, typer.Option("--create-team", help="Create the host team if missing.")] = False,
    user: Annotated[str | None, typer.Option(help="Username recorded as creator (and team member).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Import a bundle as a new challenge, or update an existing one in place."""
    server = _server()
    refused = importlib.import_module("assay.server.challenges.services.bundle_import").ImportRefused
    try:
        report = server.import_bundle(str(path), host_team, challenge, create_team, user)
    except BundleError as exc:
        if as_json:
            emit_json({"imported": False, "problems": [p.as_dict() for p in exc.problems]})
        else:
            print_problems(exc.problems, str(path))
            console.print("[red]✗ not imported[/red]: the bundle is invalid")
        raise typer.Exit(1) from None
    except refused as exc:
        if as_json:
            emit_json({"imported": False, "code": exc.code, "reason": exc.reason})
        else:
            err_console.print(f"[red]✗ not imported[/red]: {exc.reason}")
        raise typer.Exit(1) from None
    if as_json:
        emit_json(
            {
                "imported": True,
                "challenge_id": report.challenge.pk,
                "created": report.created,
                "changes": report.changes,
                "problems": [p.as_dict() for p in report.warnings],
            }
        )
        return
    if report.warnings:
        print_problems(report.warnings, str(path))
    verb = "created" if report.created else "updated"
    console.print(f"[green]✓ {verb}[/green] challenge {report.challenge.title!r} (id {report.challenge.pk})")
    for change in report.changes:
        console.print(f"  • {change}")
