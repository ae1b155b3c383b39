"""Start an isolated Assay for the benchmarks: what ``assay demo`` does, with a benchmark challenge.

    ASSAY_VAR_DIR=/tmp/x .venv/bin/python bench/_serve.py --port P --info FILE [--no-worker]

Migrates a fresh database under ``$ASSAY_VAR_DIR``, creates a host, a participant (with an API token),
their teams and a challenge from a generated bundle (trivial ``evaluate()``: the score is read from the
submission; no submission limits), writes ids and tokens as JSON to ``--info``, starts the in-process
worker (the embedded default, exactly as ``assay demo``: in its own process unless
``ASSAY_EMBEDDED_WORKER=thread``) unless ``--no-worker``, and serves with Django's threaded server
(``assay serve``). With ``--wsgi-only`` it only prepares the database and
exits (another WSGI server, e.g. gunicorn, then serves it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-challenge"

TRIVIAL = """
import json


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(user_submission_file) as fh:
        score = float(json.load(fh).get("score", 0.5))
    return {"result": [{"public": {"Accuracy": score, "F1": score}}]}
"""


def bench_bundle(into: Path) -> Path:
    folder = Path(shutil.copytree(DEMO, into / "bench-challenge"))
    config = yaml.safe_load((folder / "challenge_config.yaml").read_text())
    config["title"] = "Assay benchmark challenge"
    for phase in config["challenge_phases"]:
        phase.update(
            max_submissions_per_day=10**7,
            max_submissions_per_month=10**7,
            max_submissions=10**7,
            max_concurrent_submissions_allowed=10**7,
            allowed_submission_file_types=".json,.bin",
        )
    (folder / "challenge_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    script = folder / "evaluation_script"
    for f in script.glob("*.py"):
        f.unlink()
    (script / "__init__.py").write_text(TRIVIAL)
    return folder


def seed(info_path: Path, extra_challenges: int, teams: int = 0) -> dict:
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from assay.bundle import read_bundle
    from assay.server.accounts.tokens import create_token
    from assay.server.challenges.models import Challenge, ChallengePhaseSplit, Participation
    from assay.server.challenges.services.bundle_import import import_bundle
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
    from assay.server.teams.services import create_host_team

    User = get_user_model()

    def verified_user(name: str):
        """A user as sign-up plus the e-mail link leaves one: API tokens and hosting need the address."""
        u = User.objects.create_user(name, f"{name}@example.org", "bench")
        EmailAddress.objects.create(user=u, email=u.email, verified=True, primary=True)
        return u

    host = verified_user("bench-host")
    user = verified_user("bench")
    host_team = create_host_team("Bench hosts", host)
    team = ParticipantTeam.objects.create(name="Bench team", created_by=user)
    ParticipantTeamMember.objects.create(team=team, user=user)
    with tempfile.TemporaryDirectory() as tmp:
        folder = bench_bundle(Path(tmp))
        ids = []
        for _ in range(1 + extra_challenges):
            with read_bundle(folder) as bundle:
                ch = import_bundle(bundle, host_team=host_team, user=host).challenge
            Challenge.objects.filter(pk=ch.pk).update(approved_by_admin=True, published=True)
            Participation.objects.create(
                challenge=ch, team=team, status=Participation.Status.APPROVED, terms_accepted_at=timezone.now()
            )
            ids.append(ch.pk)
    challenge = Challenge.objects.get(pk=ids[0])
    dev = challenge.phases.get(codename="dev")
    from assay.server.submissions.services.tokens import create_worker_token

    ps = ChallengePhaseSplit.objects.get(phase=dev)
    _, token = create_token(user, "bench", days=None)
    _, worker_token = create_worker_token(None, "bench worker")
    team_tokens = []
    for n in range(teams):  # more participants, each with its own team (and leaderboard row)
        u = verified_user(f"bench-{n}")
        t = ParticipantTeam.objects.create(name=f"Bench team {n}", created_by=u)
        ParticipantTeamMember.objects.create(team=t, user=u)
        Participation.objects.create(
            challenge=challenge, team=t, status=Participation.Status.APPROVED, terms_accepted_at=timezone.now()
        )
        team_tokens.append(create_token(u, "bench", days=None)[1])
    info = {
        "team_tokens": team_tokens,
        "challenge": challenge.pk,
        "phase": dev.pk,
        "phase_split": ps.pk,
        "token": token,
        "worker_token": worker_token,
        "challenges": ids,
    }
    info_path.write_text(json.dumps(info))
    return info


def migrate_from_template() -> None:
    """Migrate the fresh database. With ``ASSAY_BENCH_DB_TEMPLATE`` (a file per benchmark run, from
    ``platform_harness.base_env``) the first platform's migrated database is kept there and every later platform
    starts from a copy of it, on which migrate finds nothing to apply: the same schema and rows, ~5 s of CPU
    less per platform (2026-12-03: migrate 5.4 s of the 8.4 s a platform took to start)."""
    from assay.server.commands import migrate

    target = Path(os.environ["ASSAY_VAR_DIR"]) / "assay.sqlite3"
    template = Path(os.environ["ASSAY_BENCH_DB_TEMPLATE"]) if os.environ.get("ASSAY_BENCH_DB_TEMPLATE") else None
    if template and template.exists() and not target.exists():
        shutil.copyfile(template, target)
    migrate(verbosity=0)
    if template and not template.exists():
        partial = template.with_name(f"{template.name}.{os.getpid()}")
        source, copy = sqlite3.connect(target), sqlite3.connect(partial)
        try:
            source.backup(copy)  # consistent even with the server's connection open in WAL mode
        finally:
            copy.close()
            source.close()
        os.replace(partial, template)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--info", type=Path, required=True)
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--wsgi-only", action="store_true")
    parser.add_argument("--extra-challenges", type=int, default=0)
    parser.add_argument("--teams", type=int, default=0)
    args = parser.parse_args()
    from assay.server.commands import serve

    migrate_from_template()
    seed(args.info, args.extra_challenges, args.teams)
    if args.wsgi_only:
        return
    if not args.no_worker:
        from assay.server import worker_process

        started = worker_process.start_embedded(f"http://127.0.0.1:{args.port}")
        # its CPU is reported apart from the server's (bench/platform_harness.py): the child process's, or the thread's
        if getattr(started, "pid", None):
            (args.info.parent / "worker-process").write_text(str(started.pid))
        elif getattr(started.thread, "native_id", None):
            (args.info.parent / "worker-thread").write_text(str(started.thread.native_id))
    note_task_thread(args.info.parent / "tasks-thread")
    sys.stdout.flush()
    serve("127.0.0.1", args.port)


def note_task_thread(path: Path) -> None:
    """Write the id of the server's background-task thread (e-mails, webhooks) once ``serve`` has started it,
    so its CPU is reported apart from the request threads' (bench/platform_harness.py)."""

    def watch() -> None:
        for _ in range(600):
            for thread in threading.enumerate():
                if thread.name == "assay-tasks" and thread.native_id:
                    path.write_text(str(thread.native_id))
                    return
            time.sleep(0.05)

    threading.Thread(target=watch, name="bench-task-thread-id", daemon=True).start()


if __name__ == "__main__":
    main()
