"""Printing problems and results for people (rich tables) or machines (``--json``)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich import filesize
from rich.console import Console
from rich.markup import escape
from rich.progress import ProgressColumn, Task
from rich.text import Text

if TYPE_CHECKING:
    from assay.bundle import Problem

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def plain(value: object) -> str:
    """Text from the server, a file or the user, made safe to embed in Rich markup: a failure reason such as
    ``must be {"predictions": [number, ...]}`` is printed as it is instead of being read as markup tags."""
    return escape(str(value))


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_problems(problems: list[Problem], title: str) -> None:
    """One problem per line, ``file:line [key] message (code)``: readable at any width, greppable."""
    console.print(f"[bold]{escape(title)}[/bold]")
    for p in problems:
        console.print(f"  {severity_mark(p.severity)} {problem_line(p.file, p.line, p.key, p.message, p.code)}")


def severity_mark(severity: str) -> str:
    return "[red]error  [/red]" if severity == "error" else "[yellow]warning[/yellow]"


def problem_line(file: str, line: int | None, key: str | None, message: str, code: str) -> str:
    """``file:line [key] message (code)`` as markup, every part escaped; no key (a YAML error has none) shows none."""
    where = plain(file + (f":{line}" if line else ""))
    shown_key = f" [magenta]\\[{plain(key)}][/magenta]" if key else ""
    return f"[cyan]{where}[/cyan]{shown_key} {plain(message)} [dim]({plain(code)})[/dim]"


class RateColumn(ProgressColumn):
    """Bytes per second over the whole transfer. Rich's own column estimates from the spacing of its updates and
    shows ``?`` when there are fewer than two (a file sent in one part, a fast network); this one counts what was
    sent since the start (parts already on the server from an interrupted run, ``task.fields["already"]``, excluded)."""

    def render(self, task: Task) -> Text:
        sent = task.completed - task.fields.get("already", 0)
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        if not elapsed or sent <= 0:
            return Text("", style="progress.data.speed")
        return Text(f"{filesize.decimal(int(sent / elapsed))}/s", style="progress.data.speed")
