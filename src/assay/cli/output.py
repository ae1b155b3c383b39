"""Printing problems and results for people (rich tables) or machines (``--json``)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from assay.bundle import Problem

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_problems(problems: list[Problem], title: str) -> None:
    """One problem per line, ``file:line [key] message (code)``: readable at any width, greppable."""
    console.print(f"[bold]{escape(title)}[/bold]")
    for p in problems:
        mark = "[red]error  [/red]" if p.severity == "error" else "[yellow]warning[/yellow]"
        where = escape(p.file + (f":{p.line}" if p.line else ""))
        key = f" [magenta]\\[{escape(p.key)}][/magenta]" if p.key else ""
        console.print(f"  {mark} [cyan]{where}[/cyan]{key} {escape(p.message)} [dim]({p.code})[/dim]")
