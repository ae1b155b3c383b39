"""Commands that run the server side. Django is imported only when one of them runs."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Annotated

import typer

from .output import console, emit_json, err_console, plain, print_problems

admin_app = typer.Typer(
    help="Server administration (needs the server installed: pip install '.\\[server]' in Assay's checkout).",
    no_args_is_help=True,
)

DEFAULT_DEMO_BUNDLE = "examples/demo-challenge"
DEFAULT_CONTAINER_BUNDLE = "examples/demo-container-challenge"
DEFAULT_AUDIT_TEMPLATES = ("examples/audit-dr-grading", "examples/audit-breast-cancer")


def _server():
    try:
        return importlib.import_module("assay.server.commands")
    except ModuleNotFoundError as exc:
        err_console.print(
            f"[red]The server is not installed ({exc.name} missing):[/red] "
            "pip install '.\\[server]' in Assay's checkout"
        )
        raise typer.Exit(2) from None


def _admin():
    """The server commands with Django set up and the database migrated: the admin commands import
    service modules (and their models) by name, which needs a configured Django first."""
    server = _server()
    try:
        server.ready_database()
    except server.NotReady as exc:
        err_console.print(f"[red]{plain(exc)}[/red]")
        raise typer.Exit(2) from None
    return server


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
    container_bundle: Annotated[
        Path, typer.Option(help="The docker-based demo challenge bundle (skipped when missing).")
    ] = Path(DEFAULT_CONTAINER_BUNDLE),
    audit_template: Annotated[
        list[Path] | None,
        typer.Option(help="An audit template folder with a build.py (repeat; default: the two in examples/)."),
    ] = None,
) -> None:
    """Set up the demo platform (users admin/host/participant/auditor, the demo and audit challenges) and serve it."""
    password = os.environ.get("ASSAY_DEMO_PASSWORD", "demo")
    audits = [str(p) for p in audit_template] if audit_template else list(DEFAULT_AUDIT_TEMPLATES)
    _server().demo(host, _port(port), password, str(bundle), str(container_bundle), audits)


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
    from assay.bundle import BundleError

    server = _admin()
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
            emit_json({"imported": False, "code": exc.code, "reason": exc.message})
        else:
            err_console.print(f"[red]✗ not imported[/red]: {plain(exc.message)}")
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
    console.print(f"[green]✓ {verb}[/green] challenge {plain(repr(report.challenge.title))} (id {report.challenge.pk})")
    for change in report.changes:
        console.print(f"  • {plain(change)}")


@admin_app.command("run-tasks")
def run_tasks(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
) -> None:
    """Run background tasks (e-mails, webhooks) until interrupted: production's process beside the web
    server (set ASSAY_TASKS_INPROCESS=0 there); `assay serve` runs them in a thread otherwise."""
    server = _admin()
    if not once:
        console.print("Running background tasks (Ctrl-C stops).")
    ran = server.run_tasks(once=once)
    if once:
        console.print(f"{ran} task(s) ran.")


token_app = typer.Typer(help="Worker tokens: one per queue, shown once, stored hashed.", no_args_is_help=True)
admin_app.add_typer(token_app, name="worker-token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="A name to recognise the worker by.")],
    challenge: Annotated[
        int | None, typer.Option(help="A remote-evaluation challenge's queue (default: platform).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a token for the platform queue, or for a remote-evaluation challenge's queue."""
    server = _admin()
    error_type = importlib.import_module("assay.server.submissions.services.errors").SubmissionError
    try:
        row, token = server.create_worker_token(name, challenge)
    except error_type as exc:
        err_console.print(f"[red]{plain(exc.message)}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        emit_json({"id": row.pk, "queue": row.queue_name, "token": token})
        return
    console.print(f"Token for queue [bold]{plain(row.queue_name)}[/bold] (id {row.pk}); it is shown only now:")
    console.print(token, highlight=False, soft_wrap=True)
    console.print(f"[dim]run: ASSAY_WORKER_TOKEN={token[:6]}… assay worker --server URL[/dim]")


@token_app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tokens (never the tokens themselves)."""
    rows = _admin().list_worker_tokens()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        state = "[red]revoked[/red]" if r["revoked"] else "[green]active[/green]"
        console.print(
            f"{r['id']:>4}  {r['prefix']}…  {r['queue']:<16} {state}  {r['name']}  last used {r['last_used_at']}"
        )


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see list).")]) -> None:
    """Revoke a token: its worker is refused from its next request on."""
    if not _admin().revoke_worker_token(token_id):
        err_console.print(f"[red]no token with id {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked token {token_id}")


def _progress(message: str) -> None:
    err_console.print(f"[dim]{plain(message)}[/dim]")


def _backup_error():
    return importlib.import_module("assay.server.backup.archive").BackupError


@admin_app.command("backup")
def backup(path: Annotated[Path, typer.Argument(help="The archive to write (a tar; replaced once complete).")]) -> None:
    """Back up the database (one consistent snapshot) and every stored file into one archive."""
    server = _admin()
    try:
        summary = server.backup(str(path), _progress)
    except _backup_error() as exc:
        err_console.print(f"[red]✗ no backup[/red]: {plain(exc)}")
        raise typer.Exit(1) from None
    rows = sum(summary.rows.values())
    console.print(
        f"[green]✓ backed up[/green] {rows} rows and {summary.files} files ({summary.file_bytes} bytes)"
        f" to {plain(path)}"
    )
    for name in summary.missing:
        err_console.print(
            f"[yellow]! a row names {plain(name)}, which is not in the storage (deleted meanwhile?)[/yellow]"
        )


@admin_app.command("restore")
def restore(path: Annotated[Path, typer.Argument(help="An archive written by `assay admin backup`.")]) -> None:
    """Restore a backup into an empty instance (new database, empty storage); checks the archive first."""
    server = _server()
    try:
        summary = server.restore(str(path), _progress)
    except _backup_error() as exc:
        err_console.print(f"[red]✗ not restored[/red]: {plain(exc)}")
        raise typer.Exit(1) from None
    for warning in summary.warnings:
        err_console.print(f"[yellow]! {plain(warning)}[/yellow]")
    console.print(
        f"[green]✓ restored[/green] {summary.rows} rows and {summary.files} files ({summary.file_bytes} bytes)"
    )


@admin_app.command("retention")
def retention(
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove the files (default: only show what would go).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="Let the task runner apply it now and then daily (run-tasks).")
    ] = False,
    unschedule: Annotated[bool, typer.Option("--unschedule", help="Stop the task runner's daily runs.")] = False,
) -> None:
    """Remove submission files past their phase's retention policy (submission_artifact_retention_policy).

    Input files and logs of settled submissions go; results, leaderboard entries and released audits stay.
    Without --apply nothing changes. Run it daily with --apply (cron), or --schedule it on the task runner."""
    server = _admin()
    if schedule or unschedule:
        if schedule and unschedule:
            err_console.print("[red]--schedule or --unschedule, not both[/red]")
            raise typer.Exit(2)
        done = server.schedule_retention(schedule)
        if schedule:
            console.print(
                "scheduled: the task runner applies retention now, then daily" if done else "already scheduled"
            )
        else:
            console.print(f"unscheduled ({done} queued run(s) dropped)")
        return
    items, applied = server.retention(apply)
    total = sum(item.size for item in items)
    if as_json:
        emit_json(
            {
                "applied": applied,
                "submissions": len(items),
                "bytes": total,
                "items": [
                    {
                        "submission": i.submission_id,
                        "challenge": i.challenge_id,
                        "phase": i.phase,
                        "policy": i.policy,
                        "submitted_at": i.submitted_at.isoformat(),
                        "files": [{"field": f, "name": n, "bytes": b} for f, n, b in i.files],
                    }
                    for i in items
                ],
            }
        )
        return
    for i in items:
        what = ", ".join(f"{f.removesuffix('_file')} {b} B" for f, _, b in i.files)
        console.print(
            f"submission {i.submission_id} (challenge {i.challenge_id}, phase {plain(i.phase)}, {i.policy},"
            f" submitted {i.submitted_at:%Y-%m-%d}): {what}"
        )
    verb = "removed" if applied else "would remove"
    console.print(f"{verb} the files of {len(items)} submission(s) ({total} bytes)")
    if items and not applied:
        console.print("[dim]run again with --apply to remove them[/dim]")
