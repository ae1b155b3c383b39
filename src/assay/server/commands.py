"""Server-side commands behind ``assay serve``, ``assay demo``, ``assay manage`` and ``assay admin``.

The ``assay`` CLI imports this module lazily (by name), so a host can install Assay without extras
(``pip install .``) and validate bundles or run a remote worker without Django.
"""

from __future__ import annotations

import http.client
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import django


def setup() -> None:
    """Django, set up once per process: ``django.setup()`` again would attach the log handler anew to
    whatever ``sys.stderr`` is then (under click's CliRunner, a stream closed when the command returns)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    from django.apps import apps

    if not apps.ready:
        django.setup()


class NotReady(Exception):
    """The database cannot serve an admin command yet (unreachable, or migrations not applied)."""


def ready_database() -> None:
    """Set Django up and make sure the database is migrated, so an admin command never meets a missing
    table halfway through its work (a fresh ``ASSAY_DATABASE_URL`` has none until ``migrate``)."""
    setup()
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    where = connection.settings_dict.get("NAME") or "?"
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        raise NotReady(f"cannot open the database {where}: {exc}") from None
    if plan:
        raise NotReady(
            f"the database {where} has {len(plan)} unapplied migrations: run `assay manage migrate`"
            " (or `assay serve`, which applies them first)"
        )


def manage(argv: list[str]) -> None:
    """Django's ``manage.py`` with Assay's settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["assay manage", *argv])


def migrate(verbosity: int = 1) -> None:
    setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def serve(host: str, port: int) -> None:
    """Serve the platform (Django's threaded server; production uses ``gunicorn assay.server.wsgi``)."""
    setup()
    from django.core.management import call_command

    send_small_writes_at_once()
    parse_headers_only()
    serve_site_url(f"http://{host}:{port}")
    start_task_runner()
    call_command("runserver", f"{host}:{port}", use_reloader=False, use_threading=True)


def serve_site_url(site: str) -> None:
    """Links in e-mails name the address served here, unless ``ASSAY_SITE_URL`` says another."""
    if not os.environ.get("ASSAY_SITE_URL", "").strip():
        from django.conf import settings

        settings.SITE_URL = site


def start_task_runner() -> None:
    """The background-task thread (e-mails, webhooks), unless ``ASSAY_TASKS_INPROCESS=0`` says a separate
    ``assay admin run-tasks`` process runs them, or the embedded worker's process runs them."""
    from django.conf import settings

    from assay.server import inprocess_worker

    if settings.TASKS_INPROCESS and not inprocess_worker.runs_tasks():  # the worker process runs them
        from assay.server.tasks import runner

        runner.start()


def run_tasks(once: bool = False) -> int:
    """``assay admin run-tasks``: run background tasks until interrupted (``once``: what is due, then stop)."""
    from assay.server.tasks.runner import Runner

    runner = Runner()
    try:
        return runner.serve(once=once)
    except KeyboardInterrupt:
        return 0


def send_small_writes_at_once() -> None:
    """Set TCP_NODELAY on the dev server's connections.

    Its handler writes the headers and the body in separate small sends; with Nagle's algorithm on, the
    second waits for the client's delayed ACK (~40 ms on Linux). That put 40 ms on every API call and
    worker request: ``bench/run.py --only overhead,api`` went from p50 264 ms to 131 ms, and a small
    API call from 44 ms to 1.5 ms.
    """
    from django.core.servers.basehttp import WSGIRequestHandler

    WSGIRequestHandler.disable_nagle_algorithm = True


def parse_headers_only() -> None:
    """Have the dev server parse a request's header block as headers only (:class:`RequestHeaders`)."""
    from django.core.servers.basehttp import WSGIRequestHandler

    WSGIRequestHandler.MessageClass = RequestHeaders


class RequestHeaders(http.client.HTTPMessage):
    """The dev server's view of a request's header block: headers only, never a MIME body.

    ``http.server`` parses the block with the e-mail parser, which for a ``multipart/*`` content type goes
    on to look for MIME parts in the (empty) rest and compiles a regular expression for the boundary: a new
    one per request, since every client picks a fresh boundary. That was 0.22 ms of each submit's server
    CPU (0.03 ms without). Said not to be multipart (nor ``message/*``), the parser stops after the headers,
    as ``headersonly=True`` would; the headers and ``get_content_type()`` are unchanged, and the dev server
    reads nothing else from this object.
    """

    def get_content_maintype(self) -> str:
        return "text"


def import_bundle(path: str, host_team: str, challenge_id: int | None, create_team: bool, username: str | None):
    """Validate and import a bundle; returns the ImportReport. Raises BundleError or ImportRefused."""
    setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from assay.bundle import read_bundle
    from assay.server.challenges.models import Challenge
    from assay.server.challenges.services.bundle_import import ImportRefused, config_text_and_digest
    from assay.server.challenges.services.bundle_import import import_bundle as do_import
    from assay.server.teams.models import HostTeam
    from assay.server.teams.services import create_host_team

    user = None
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ImportRefused("no_such_user", f"no user named {username!r}")
    team = HostTeam.objects.filter(name=host_team).first()
    if team is None:
        if not create_team:
            raise ImportRefused(
                "no_such_host_team", f"no host team named {host_team!r} (pass --create-team to create it)"
            )
        if user is None:
            raise ImportRefused("no_such_user", "--create-team needs --user (the team's first member)")
    challenge = None
    if challenge_id is not None:
        challenge = Challenge.objects.filter(pk=challenge_id).first()
        if challenge is None:
            raise ImportRefused("no_such_challenge", f"no challenge with id {challenge_id}")
    with read_bundle(path, limits=settings.BUNDLE_LIMITS) as bundle:
        config_text, digest = config_text_and_digest(path)
        if team is None:  # only now that the bundle is known to be valid: a refused one creates nothing
            team = create_host_team(host_team, user, operator=True)
        return do_import(
            bundle,
            host_team=team,
            user=user,
            challenge=challenge,
            config_text=config_text,
            bundle_sha256=digest,
            operator=True,  # the operator vouches for the user they name
        )


def demo(
    host: str,
    port: int,
    password: str,
    bundle: str,
    container_bundle: str | None = None,
    audit_templates: Sequence[str] = (),
) -> None:
    """Migrate, create the demo users and challenges (audit templates built first), then serve."""
    migrate(verbosity=0)
    from assay.server.demo import seed, use_demo_signing_key

    site = f"http://{host}:{port}"
    if audit_templates:
        print(use_demo_signing_key(), flush=True)
    lines = seed(
        password=password,
        bundle_path=bundle,
        container_bundle_path=container_bundle,
        site=site,
        audit_bundle_paths=audit_templates,
    )
    for line in lines:
        print(line, flush=True)
    from django.conf import settings

    from assay.server import worker_process

    serve_site_url(site)  # before the worker process starts: its e-mails link here too
    worker_process.start_embedded(site)
    print(f"Assay is serving on http://{host}:{port}/  (admin: http://{host}:{port}/admin/)", flush=True)
    where = "a thread of this process" if settings.EMBEDDED_WORKER == "thread" else "its own process"
    print(f"An embedded worker evaluates submissions in {where} (no other command needed).", flush=True)
    sys.stdout.flush()
    serve(host, port)


def create_worker_token(name: str, challenge_id: int | None) -> tuple[object, str]:
    """An operator's token: the platform queue, or a remote challenge's queue."""
    setup()
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.services.errors import SubmissionError
    from assay.server.submissions.services.tokens import create_worker_token as create

    challenge = None
    if challenge_id is not None:
        challenge = Challenge.objects.filter(pk=challenge_id).first()
        if challenge is None:
            raise SubmissionError("not_found", f"no challenge with id {challenge_id}", 404)
    return create(None, name, challenge)


def list_worker_tokens() -> list[dict]:
    setup()
    from assay.server.submissions.models import WorkerToken

    return [
        {
            "id": t.pk,
            "name": t.name,
            "queue": t.queue_name,
            "prefix": t.prefix,
            "created_at": t.created_at.isoformat(),
            "revoked": t.revoked_at is not None,
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
        }
        for t in WorkerToken.objects.order_by("pk")
    ]


def revoke_worker_token(token_id: int) -> bool:
    setup()
    from assay.server.submissions.models import WorkerToken
    from assay.server.submissions.services.tokens import revoke_worker_token as revoke

    row = WorkerToken.objects.filter(pk=token_id).first()
    if row is None:
        return False
    revoke(None, row)
    return True


def backup(path: str, progress: Callable[[str], None]):
    """``assay admin backup``: the database (one snapshot) and every stored file into one archive."""
    setup()
    from assay.server.backup.dump import backup as write

    return write(Path(path), progress)


def restore(path: str, progress: Callable[[str], None]):
    """``assay admin restore``: into an empty instance only (migrated here first)."""
    setup()
    from assay.server.backup.load import restore as load

    return load(Path(path), progress)


def retention(apply: bool) -> tuple[list, bool]:
    """``assay admin retention``: what the phases' policies remove now, removed only with ``apply``."""
    setup()
    from assay.server.submissions.services import retention as policy

    return (policy.apply() if apply else list(policy.due())), apply


def schedule_retention(on: bool) -> bool | int:
    """Put retention on the task runner (a run now, then daily), or take it off (how many runs dropped)."""
    setup()
    from assay.server.submissions.services import retention as policy

    return policy.schedule() if on else policy.unschedule()
