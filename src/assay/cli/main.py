"""Entry point of the ``assay`` command."""

from __future__ import annotations

import typer

from assay import __version__

from . import audit_commands, bundle_commands, client_config, environment_commands, server_commands, worker_command

app = typer.Typer(
    help="Assay: host and take part in AI benchmarks, challenges and audits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(bundle_commands.app, name="bundle")
app.add_typer(environment_commands.app, name="environments")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(server_commands.admin_app, name="admin")
app.command("serve")(server_commands.serve)
app.command("demo")(server_commands.demo)
app.command("worker")(worker_command.worker)
app.command("manage", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    server_commands.manage
)

from . import client_commands  # noqa: E402  (participant and host commands over the REST API)

client_commands.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Assay: host and take part in AI benchmarks, challenges and audits."""
    ctx.call_on_close(client_config.close_clients)  # a command's HTTP connections end with it


def main() -> None:
    app()


if __name__ == "__main__":
    main()
