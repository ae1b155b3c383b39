"""What one page of a phase's submissions costs the server, on every face that lists them.

.venv/bin/python bench/submission_listing.py [--rows 250] [--requests 20] [--database sqlite|postgres]
                                             [--database-url URL] [--dump DIR] [--profile FACE] [--output FILE]

Builds a fresh database (a temporary SQLite file, or a PostgreSQL database it creates and drops) with one
challenge, one phase of two splits (public, and one only the hosts see, so a participant's results are cut),
one team that made ``--rows`` submissions (mostly finished with a result, log and result files, some failed,
some waiting), then asks each face for its largest page through Django's test client, as the team's member
or as the challenge's host:

* ``v1 phase (team)``: ``GET /api/v1/phases/<id>/submissions?page_size=200``;
* ``v1 challenge (host)``: ``GET /api/v1/challenges/<id>/submissions?phase=<id>&page_size=200``;
* ``v1 me (team)``: ``GET /api/v1/me/submissions?page_size=200``;
* ``EvalAI phase (team)``: ``GET /api/jobs/challenge/<c>/challenge_phase/<p>/submission/?page_size=200``;
* ``web host page``: the host's submissions page (50 rows);
* ``web team page``: the team's submissions page of the challenge (200 rows).

Per face: CPU milliseconds of this process per page (the server's work, plus the test client's small share),
wall p50, SQL statements per page. ``--dump DIR`` writes each face's body with signed URLs' key and timestamps fixed
and the CSRF tokens blanked, so two commits' answers can be compared byte for byte (``cmp -r``);
``--profile FACE`` prints cProfile's top functions of that face instead. Results, with the machine, its load and
the commit of the code measured (a worktree's when PYTHONPATH names one), are merged into ``--output``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from leaderboard import code_commit  # noqa: E402
from measure import load_average, machine  # noqa: E402

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
OUTPUT = {"result": [{"public": {"Accuracy": 0.825, "F1": 0.6}}, {"private": {"Accuracy": 0.5, "F1": 0.7}}]}


def configure(args: argparse.Namespace) -> str:
    """Point the settings at a fresh database before Django starts; return where it is."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    work = Path(tempfile.mkdtemp(prefix="assay-bench-listing-"))
    args.workdir = work
    os.environ["ASSAY_VAR_DIR"] = str(work)
    if args.database == "sqlite":
        os.environ["ASSAY_DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
        return str(work / "bench.sqlite3")
    import psycopg

    url = args.database_url or "postgres://postgres@127.0.0.1:5432/assay_bench_listing"
    base, _, name = url.rpartition("/")
    os.environ["ASSAY_DATABASE_URL"] = url
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def drop(args: argparse.Namespace, where: str) -> None:
    from django.db import connections

    connections.close_all()
    shutil.rmtree(args.workdir, ignore_errors=True)
    if args.database == "postgres":
        import psycopg

        base, _, name = where.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def generate(rows: int) -> dict:
    """One challenge, one phase of a public and a host-only split, one team with ``rows`` submissions."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from assay.server.challenges.models import (
        Challenge,
        ChallengePhase,
        ChallengePhaseSplit,
        DatasetSplit,
        Leaderboard,
        Participation,
    )
    from assay.server.submissions.models import Submission
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
    from assay.server.teams.services import create_host_team

    User = get_user_model()
    start, end = T0 - dt.timedelta(days=3650), T0 + dt.timedelta(days=3650)
    with transaction.atomic():
        host = User.objects.create_user("bench-host", "host@bench.example", None)
        host_team = create_host_team("Bench hosts", host, operator=True)
        challenge = Challenge.objects.create(
            title="Bench", start_date=start, end_date=end, host_team=host_team, published=True, approved_by_admin=True
        )
        phase = ChallengePhase.objects.create(
            challenge=challenge, config_id=1, name="Test", codename="test", start_date=start, end_date=end,
            leaderboard_public=True, is_public=True, is_submission_public=True,
        )  # fmt: skip
        board = Leaderboard.objects.create(
            challenge=challenge, config_id=1, schema={"labels": ["Accuracy", "F1"], "default_order_by": "Accuracy"}
        )
        for n, (codename, visibility) in enumerate((("public", 3), ("private", 1)), 1):
            split = DatasetSplit.objects.create(challenge=challenge, config_id=n, name=codename, codename=codename)
            ChallengePhaseSplit.objects.create(
                phase=phase, dataset_split=split, leaderboard=board, visibility=visibility
            )
        member = User.objects.create_user("bench-member", "member@bench.example", None)
        team = ParticipantTeam.objects.create(name="Bench team", created_by=member)
        ParticipantTeamMember.objects.create(team=team, user=member)
        Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=T0)
        subs = []
        for i in range(rows):
            status = "failed" if i % 10 == 3 else "submitted" if i >= rows - 5 else "finished"
            done = status == "finished"
            subs.append(
                Submission(
                    phase=phase, participant_team=team, created_by=member, submission_number=i + 1, status=status,
                    input_file=f"submissions/preds-{i}.json", input_file_name="preds.json",
                    input_file_sha256=f"{i:064x}", input_file_size=1000 + i, method_name=f"method {i % 7}",
                    submission_metadata={"uses_modulo": bool(i % 2)}, is_public=bool(i % 3),
                    output=OUTPUT if done else None, failure_reason="boom" if status == "failed" else "",
                    stdout_file=f"submission_logs/out-{i}.txt" if status != "submitted" else "",
                    stderr_file=f"submission_logs/err-{i}.txt" if status != "submitted" else "",
                    submission_result_file=f"submission_results/result-{i}.json" if done else "",
                    submission_metadata_file=f"submission_results/meta-{i}.json" if done else "",
                    attempt=1 if status != "submitted" else 0,
                )
            )  # fmt: skip
        made = Submission.objects.bulk_create(subs)
        for i, sub in enumerate(made):  # fixed times (auto_now_add took "now"): the same bodies on every run
            sub.submitted_at = T0 + dt.timedelta(seconds=i)
            if sub.status != "submitted":
                sub.started_at = sub.submitted_at + dt.timedelta(seconds=1)
                sub.completed_at = sub.submitted_at + dt.timedelta(seconds=2, microseconds=500 * i)
        Submission.objects.bulk_update(made, ["submitted_at", "started_at", "completed_at"])
        for user in (host, member):  # API tokens are for verified addresses
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return {"challenge": challenge.pk, "phase": phase.pk, "host": host, "member": member}


def faces(world: dict) -> dict[str, tuple[str, str]]:
    """Each face: (who asks, its URL)."""
    c, p = world["challenge"], world["phase"]
    return {
        "v1 phase (team)": ("member", f"/api/v1/phases/{p}/submissions?page_size=200"),
        "v1 challenge (host)": ("host", f"/api/v1/challenges/{c}/submissions?phase={p}&page_size=200"),
        "v1 me (team)": ("member", "/api/v1/me/submissions?page_size=200"),
        "EvalAI phase (team)": ("member", f"/api/jobs/challenge/{c}/challenge_phase/{p}/submission/?page_size=200"),
        "web host page": ("host-web", f"/challenges/{c}/host/submissions"),
        "web team page": ("member-web", f"/challenges/{c}/submissions"),
    }


def clients(world: dict) -> dict:
    from django.test import Client
    from rest_framework.test import APIClient

    from assay.server.accounts.tokens import create_token

    made = {}
    for role in ("member", "host"):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(world[role], 'bench', 30)[1]}")
        web = Client()
        web.force_login(world[role])
        made[role], made[f"{role}-web"] = api, web
    return made


def statements(fn) -> int:
    from django.db import connection

    count = 0

    def counter(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        fn()
    return count


CSRF = re.compile(rb'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]*"')  # masked anew per render


def timed(fn, runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - t)
    return {
        "cpu_ms": round(1000 * statistics.mean(cpus), 2),
        "cpu_ms_median": round(1000 * statistics.median(cpus), 2),
        "wall_ms_p50": round(1000 * statistics.median(walls), 2),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250, help="the team's submissions (a page shows up to 200)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per face")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=None, help="PostgreSQL only; the database is created and dropped")
    parser.add_argument("--dump", default=None, help="write each face's body here (timestamps fixed, CSRF blanked)")
    parser.add_argument("--profile", default=None, help="a face's name: print its cProfile instead of timing")
    parser.add_argument("--output", default=str(HERE / "results" / "submission_listing.json"))
    parser.add_argument("--label", default=None, help="key of the results in --output (default: the commit)")
    args = parser.parse_args(argv)
    started = machine()
    where = configure(args)
    if args.dump:  # signed URLs: one key on every run and commit (else each fresh var folder makes its own)
        os.environ["ASSAY_SECRET_KEY"] = "bench-submission-listing-not-secret"

    import django

    django.setup()
    from django.core import signing
    from django.core.management import call_command

    signing.TimestampSigner.timestamp = lambda self: "1"  # signed URLs: the same bytes on every run and commit
    try:
        call_command("migrate", verbosity=0)
        world = generate(args.rows)
        made = clients(world)
        urls = faces(world)

        def ask(name: str):
            who, url = urls[name]
            response = made[who].get(url)
            assert response.status_code == 200, (name, response.status_code, response.content[:300])
            return response

        if args.profile:
            import cProfile
            import pstats

            for _ in range(3):
                ask(args.profile)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.requests):
                ask(args.profile)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return {}
        if args.dump:
            folder = Path(args.dump)
            folder.mkdir(parents=True, exist_ok=True)
            for name in urls:
                body = CSRF.sub(rb'\1"', ask(name).content)
                (folder / (re.sub(r"\W+", "-", name).strip("-") + ".body")).write_bytes(body)
        results = {}
        for name in urls:
            rows = ask(name)
            numbers = timed(lambda name=name: ask(name), args.requests)
            numbers["statements"] = statements(lambda name=name: ask(name))
            numbers["bytes"] = len(rows.content)
            results[name] = numbers
        result = {
            "database": args.database,
            "rows": args.rows,
            "commit": code_commit(),
            "machine": started,
            "load_average_at_end": load_average(),
            "faces": results,
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    finally:
        drop(args, where)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged[args.label or f"{result['commit']} {args.database}"] = result
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"{result['commit']} {args.database}, {args.rows} submissions; {started['cpu']}, load at start "
          f"{started['load_average_at_start']}, at end {result['load_average_at_end']}")  # fmt: skip
    for name, n in results.items():
        print(
            f"  {name:22s} CPU {n['cpu_ms']:7.2f} ms/page (median {n['cpu_ms_median']:7.2f}), "
            f"wall p50 {n['wall_ms_p50']:7.2f} ms, {n['statements']:3d} statements, {n['bytes']:,} bytes"
        )
    print(f"  written to {out}")
    return result


if __name__ == "__main__":
    main()
