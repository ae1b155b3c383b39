"""``--phase`` as people write it: an id, a codename (``dev``) or a name ("Development phase").

Codenames are unique within a challenge only, so a codename is looked up in ``--challenge`` when given, else in
the challenges the user takes part in (or hosts); a name matching nothing, or phases of several challenges, is
refused with the phases it could have meant, so the next try can be right.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client_config import Client
from .output import err_console, plain

PhaseOpt = Annotated[str, typer.Option("--phase", "-p", help="Phase id, codename or name (assay phases CHALLENGE).")]
ChallengeOpt = Annotated[
    int | None,
    typer.Option("--challenge", "-c", help="The challenge of a phase codename (default: look in your challenges)."),
]
#: At most this many phases are listed in a "no such phase" message.
LISTED = 20


def phase_id(api: Client, phase: str | int, challenge: int | None = None, role: str = "participant") -> int:
    """The id ``phase`` names; exit 2 with the candidate phases when it names none or several.

    Raises :class:`~assay.cli.client_config.ApiError` when the server cannot list them (the caller's ``fail``)."""
    text = str(phase).strip()
    if text.isdigit():
        return int(text)
    if challenge is not None:
        challenges = [challenge]
    else:
        challenges = [c["id"] for c in api.all_pages("/challenges", status="all", role=role)]
    candidates: list[dict[str, Any]] = []
    for cid in challenges:
        candidates += [{**p, "challenge": cid} for p in api.all_pages(f"/challenges/{cid}/phases")]
    wanted = text.casefold()
    found = [p for p in candidates if wanted in (str(p["codename"]).casefold(), str(p["name"]).casefold())]
    if len(found) == 1:
        return int(found[0]["id"])
    where = f"challenge {challenge}" if challenge is not None else f"the challenges you {_verb(role)}"
    if not found:
        err_console.print(f"[red]✗ no phase {plain(repr(text))} in {where}[/red]")
        _list(candidates)
        err_console.print("  [dim]→ pass one of these ids or codenames with --phase (and --challenge ID)[/dim]")
    else:
        err_console.print(f"[red]✗ {plain(repr(text))} names phases of several challenges[/red]")
        _list(found)
        err_console.print("  [dim]→ add --challenge ID, or pass the phase's id[/dim]")
    raise typer.Exit(2)


def _verb(role: str) -> str:
    return "host" if role == "host" else "take part in"


def _list(phases: list[dict[str, Any]]) -> None:
    if not phases:
        err_console.print("  (there are no phases to choose from)")
    for p in phases[:LISTED]:
        err_console.print(
            f"  {p['id']}  {plain(p['codename'])}  ({plain(p['name'])}, challenge {p['challenge']})", highlight=False
        )
    if len(phases) > LISTED:
        err_console.print(f"  … and {len(phases) - LISTED} more")
