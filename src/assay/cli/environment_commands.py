"""``assay environments ...``: the Python environments evaluation scripts run in, listed and built ahead.

Why a command: the first build of a stack downloads about 110 MB of wheels and takes 40 s or more. A
worker would otherwise do it silently at its first submission; ``make test``, a worker image or an
operator runs ``assay environments prepare`` once instead, with progress shown.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .output import console, emit_json, err_console, plain

app = typer.Typer(help="The Python environments evaluation scripts run in (EvalAI's stacks).", no_args_is_help=True)


@app.command("list")
def list_environments(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Each environment, what it holds, and whether it is built on this machine (and where)."""
    from assay.bundle import environments
    from assay.evaluation.venvs import environments_dir, is_ready, stack_dir

    root = environments_dir()
    rows = []
    for env in environments.ENVIRONMENTS.values():
        folder = stack_dir(env, root)
        rows.append(
            {
                "name": env.name,
                "default": env.name == environments.DEFAULT_ENVIRONMENT,
                "summary": env.summary,
                "built": is_ready(folder),
                "path": str(folder),
            }
        )
    if as_json:
        emit_json({"root": str(root), "environments": rows, "aliases": environments.ALIASES})
        return
    console.print(f"[bold]evaluation environments[/bold] [dim](cache: {plain(root)})[/dim]")
    for row in rows:
        state = "[green]built[/green]" if row["built"] else "[yellow]not built[/yellow]"
        default = " [dim](default)[/dim]" if row["default"] else ""
        console.print(f"  {plain(row['name'])}{default}: {state} — {plain(row['summary'])}")


@app.command("prepare")
def prepare(
    names: Annotated[
        list[str] | None, typer.Argument(help="Environments to build (default: every one).", show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print one line per environment only.")] = False,
) -> None:
    """Build environments now (once per machine; ASSAY_ENVIRONMENTS_DIR chooses where), showing pip's progress."""
    from assay.bundle import environments
    from assay.evaluation.venvs import SetupError, ensure_stack, environments_dir

    try:
        chosen = [environments.get(name) for name in names] if names else list(environments.ENVIRONMENTS.values())
    except ValueError as exc:
        err_console.print(f"[red]{plain(exc)}[/red]")
        raise typer.Exit(2) from None
    root = environments_dir()

    def echo(line: str) -> None:
        if not quiet or not line.startswith("  "):
            console.print(line, markup=False, highlight=False)

    for env in chosen:
        try:
            folder = ensure_stack(env, root, echo=echo)
        except SetupError as exc:
            err_console.print(f"[red]{plain(env.name)} could not be built: {plain(exc.message)}[/red]")
            if exc.log and not quiet:
                err_console.print(exc.log[-4000:], markup=False)
            raise typer.Exit(1) from None
        console.print(f"[green]✓[/green] {plain(env.name)}: {plain(folder)}")
