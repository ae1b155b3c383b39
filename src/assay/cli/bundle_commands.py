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
                "questionnaire": _questionnaire_summary(bundle.questionnaire),
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
            if q := summary["questionnaire"]:
                console.print(
                    f"  questionnaire {plain(q['id'])} {plain(q['version'])}: {q['questions']} question(s),"
                    f" {q['required']} required [dim](sha256 {q['sha256'][:12]})[/dim]"
                )
            if summary["unchecked_files"]:
                console.print(f"[dim]config-only: not checked: {plain(', '.join(summary['unchecked_files']))}[/dim]")
        else:
            errors = [p for p in problems if p.severity == "error"] or problems
            console.print(f"[red]✗ invalid[/red]: {len(errors)} error(s)")
    raise typer.Exit(0 if summary["valid"] else 1)


def _questionnaire_summary(questionnaire) -> dict | None:
    if questionnaire is None:
        return None
    questions = list(questionnaire.questions())
    return {
        "id": questionnaire.id,
        "version": questionnaire.version,
        "questions": len(questions),
        "required": sum(q.required for q in questions),
        "sha256": questionnaire.sha256(),
    }


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


@app.command("questionnaire-template")
def questionnaire_template(
    name: Annotated[str, typer.Argument(help="The template's name.")] = "fg-ai4h-v1",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print an audit questionnaire template (YAML) to copy into a bundle and adapt (key `questionnaire`)."""
    from assay.bundle.questionnaire import TEMPLATES, template_text

    if name not in TEMPLATES:
        err_console.print(f"[red]No questionnaire template {plain(name)!r}[/red]; known: {', '.join(TEMPLATES)}")
        raise typer.Exit(2)
    text = template_text(name)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {plain(output)}")
    else:
        typer.echo(text, nl=False)


@app.command("check-answers")
def check_answers(
    questionnaire: Annotated[Path, typer.Argument(help="The questionnaire YAML file.")],
    answers: Annotated[Path, typer.Argument(help="The answers: YAML or JSON, {question id: answer}.")],
    complete: Annotated[
        bool, typer.Option("--complete", help="Also require every required question (as submitting does).")
    ] = False,
) -> None:
    """Check an answers file against a questionnaire, as the server will. Exit 0 when fine, 1 with problems."""
    from assay.bundle import BundleError
    from assay.bundle.questionnaire import load_answers, load_questionnaire

    for path in (questionnaire, answers):
        if not path.is_file():
            err_console.print(f"[red]No such file:[/red] {plain(path)}")
            raise typer.Exit(2)
    try:
        schema = load_questionnaire(questionnaire.read_bytes(), questionnaire.name)
        given = load_answers(answers.read_bytes(), answers.name)
    except BundleError as exc:
        print_problems(exc.problems, "invalid file")
        raise typer.Exit(1) from None
    problems = schema.validate_answers(given, complete=complete)
    for problem in problems:
        err_console.print(f"[red]✗[/red] {plain(problem)}")
    if problems:
        console.print(f"[red]✗ {len(problems)} problem(s)[/red] in {plain(answers)}")
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/green] {len(given)} answer(s) fit {plain(schema.id)} {plain(schema.version)}"
        + (" and every required question is answered" if complete else "")
    )
