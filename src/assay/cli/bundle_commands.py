"""``assay bundle ...``: offline tools for challenge hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .output import console, emit_json, err_console, plain, print_problems

app = typer.Typer(help="Check challenge bundles offline, before anything is uploaded.", no_args_is_help=True)


@app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="A bundle zip, a bundle folder, or a lone challenge_config.yaml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report instead of tables.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
) -> None:
    """Validate a bundle exactly as the server will. Exit 0 when valid, 1 when invalid, 2 on usage errors.

    A lone challenge_config.yaml is checked in config-only mode: the files it names are listed, not required.
    """
    from assay.bundle import BundleError, read_bundle  # imported here: pydantic and yaml only for bundle commands

    if not path.exists():
        err_console.print(f"[red]No such file or folder:[/red] {plain(path)}")
        raise typer.Exit(2)
    try:
        with read_bundle(path) as bundle:
            problems = list(bundle.warnings)
            summary = {
                "valid": not (strict and problems),
                "mode": bundle.source.kind,
                "title": bundle.config.title,
                "phases": [p.codename for p in bundle.config.challenge_phases],
                "dataset_splits": [s.codename for s in bundle.config.dataset_splits],
                "leaderboards": [b.id for b in bundle.config.leaderboard],
                "unchecked_files": sorted(set(bundle.missing_files)),
                "problems": [p.as_dict() for p in problems],
            }
    except BundleError as exc:
        problems = exc.problems
        summary = {"valid": False, "problems": [p.as_dict() for p in problems]}
    if as_json:
        emit_json(summary)
    else:
        if problems:
            print_problems(problems, f"{path}")
        if summary["valid"]:
            console.print(
                f"[green]✓ valid[/green] {summary['title']!r}: {len(summary['phases'])} phase(s)"
                f" {summary['phases']}, {len(summary['dataset_splits'])} split(s), "
                f"{len(summary['leaderboards'])} leaderboard(s) [dim]({summary['mode']})[/dim]"
            )
            if summary["unchecked_files"]:
                console.print(f"[dim]config-only: not checked: {plain(', '.join(summary['unchecked_files']))}[/dim]")
        else:
            errors = [p for p in problems if p.severity == "error"] or problems
            console.print(f"[red]✗ invalid[/red]: {len(errors)} error(s)")
    raise typer.Exit(0 if summary["valid"] else 1)


@app.command("schema")
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of challenge_config.yaml (for editors and CI)."""
    from assay.bundle import json_schema

    data = json_schema()
    if output:
        import json

        output.write_text(json.dumps(data, indent=2) + "\n")
        console.print(f"wrote {plain(output)}")
    else:
        emit_json(data)
