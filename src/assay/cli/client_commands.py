"""Registers the client commands (participant and host) on the ``assay`` app."""

from __future__ import annotations

import typer

from . import client_data, client_models, client_push
from . import client_host as host
from . import client_participant as p
from .client_config import config_path


def register(app: typer.Typer) -> None:
    app.command("login", rich_help_panel="Account")(p.login)
    app.command("logout", rich_help_panel="Account")(p.logout)
    app.command("whoami", rich_help_panel="Account")(p.whoami)
    app.add_typer(p.token_app, name="token", rich_help_panel="Account")
    app.command("config-path", rich_help_panel="Account")(_config_path)
    app.add_typer(p.challenges_app, name="challenges", rich_help_panel="Participate")
    app.command("phases", rich_help_panel="Participate")(p.phases)
    app.add_typer(p.teams_app, name="teams", rich_help_panel="Participate")
    app.command("participate", rich_help_panel="Participate")(p.participate)
    app.command("submit", rich_help_panel="Participate")(p.submit)
    app.command("push", rich_help_panel="Participate")(client_push.push)
    app.add_typer(client_models.app, name="models", rich_help_panel="Participate")
    app.add_typer(client_data.app, name="data", rich_help_panel="Participate")
    app.command("submissions", rich_help_panel="Participate")(p.submissions)
    app.command("submission", rich_help_panel="Participate")(p.submission)
    for kind in ("result", "stdout", "stderr"):
        app.command(kind, rich_help_panel="Participate")(p._file_command(kind))
    app.command("cancel", rich_help_panel="Participate")(p._action("cancel"))
    app.command("rerun", rich_help_panel="Participate")(p._action("rerun"))
    app.command("leaderboard", rich_help_panel="Participate")(p.leaderboard)
    app.add_typer(host.app, name="host", rich_help_panel="Host")


def _config_path() -> None:
    """Print where the CLI keeps its servers and tokens."""
    typer.echo(str(config_path()))
