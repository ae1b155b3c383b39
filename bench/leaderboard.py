"""How fast a leaderboard page answers with 10⁶ entries from 10⁴ teams, against EvalAI's way of ranking.

.venv/bin/python bench/leaderboard.py [--entries 1000000] [--teams N] [--database sqlite|postgres]
                                      [--database-url URL] [--requests 200] [--output FILE] [--keep]

Builds a fresh database (a temporary SQLite file, or a PostgreSQL database it creates and drops),
fills one public phase-split with ``--entries`` finished submissions from ``--teams`` teams by bulk
inserts (SQLite ``executemany``, PostgreSQL ``COPY``), builds the standings once (timed), then times:

* the API: ``GET /api/v1/phase-splits/<id>/leaderboard`` (top-50 page) through Django's test client —
  anonymous default order, ``?order_by=F1``, a deep page, a signed-in team member (with its own
  block), a host; p50 and p95 over ``--requests`` requests each;
* the baseline, ranking the same data the way EvalAI does (``apps/jobs/utils.py``
  ``calculate_distinct_sorted_leaderboard_data``): the database extracts the sort value, every
  eligible row is loaded into Python, sorted, and deduplicated per team; top 50 kept.

The two top-50s are compared (they must agree), and the results are merged into ``--output``
(default ``bench/results/leaderboard.json``) under the database's name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = 50


def configure(args: argparse.Namespace) -> str:
    """Point the settings at a fresh database before Django starts; return a label for it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assay.server.settings")
    work = Path(tempfile.mkdtemp(prefix="assay-bench-lb-"))
    args.workdir = work
    os.environ["ASSAY_VAR_DIR"] = str(work)
    os.environ["ASSAY_DB_CONN_MAX_AGE"] = str(args.conn_max_age)
    if args.database == "sqlite":
        os.environ["ASSAY_DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
        return str(work / "bench.sqlite3")
    import psycopg

    url = args.database_url or "postgres://postgres@127.0.0.1:5432/assay_bench"
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["ASSAY_DATABASE_URL"] = url
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


def bulk_insert(model, rows: list[dict], **fixed) -> None:
    """Insert rows fast, whatever columns the model has: each column not given takes the value a new
    instance would get (its default), so the bench keeps working as models grow. Given values are
    plain Python (ints, text, booleans, aware datetimes, dicts for JSON)."""
    from django.db import connection
    from django.db.models import DateTimeField, JSONField

    template = model(**fixed)
    fields = list(model._meta.concrete_fields)
    given = list(rows[0])
    by_name = {f.attname: f for f in fields}
    rest = [f for f in fields if f.attname not in given]
    constants = [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in rest]
    sqlite = connection.vendor == "sqlite"

    def converter(f):
        if isinstance(f, JSONField):
            return json.dumps
        if sqlite and isinstance(f, DateTimeField):
            return connection.ops.adapt_datetimefield_value
        return None

    converters = [converter(by_name[name]) for name in given]
    columns = [by_name[name].column for name in given] + [f.column for f in rest]
    names = ", ".join(f'"{c}"' for c in columns)
    table = model._meta.db_table

    pairs = list(zip(given, converters, strict=True))

    def tuples():
        for row in rows:
            yield [row[name] if conv is None else conv(row[name]) for name, conv in pairs] + constants

    with connection.cursor() as cursor:
        if not sqlite:
            with cursor.cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for values in tuples():
                    copy.write_row(values)
            return
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
        raw = cursor.cursor  # the sqlite3 cursor itself: no placeholder rewriting per row
        batch = []
        for values in tuples():
            batch.append(values)
            if len(batch) >= 50000:
                raw.executemany(sql, batch)
                batch.clear()
        if batch:
            raw.executemany(sql, batch)


def reset_sequences(*models) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), list(models)):
            cursor.execute(sql)


def generate(entries: int, teams: int, seed: int) -> dict:
    """One challenge, one public phase-split, ``entries`` results from ``teams`` teams."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from assay.server.challenges.models import (
        Challenge,
        ChallengePhase,
        ChallengePhaseSplit,
        DatasetSplit,
        Leaderboard,
        Participation,
    )
    from assay.server.leaderboards.models import LeaderboardEntry
    from assay.server.submissions.models import Submission
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
    from assay.server.teams.services import create_host_team

    User = get_user_model()
    rng = random.Random(seed)
    now = timezone.now()
    start = now - dt.timedelta(days=30)
    with transaction.atomic():
        host = User.objects.create_user("bench-host", "host@bench.example", None)
        host_team = create_host_team("Bench hosts", host, operator=True)  # the bench seeds as the operator
        challenge = Challenge.objects.create(
            title="Bench", start_date=start, end_date=now + dt.timedelta(days=30), host_team=host_team,
            published=True, approved_by_admin=True,
        )  # fmt: skip
        phase = ChallengePhase.objects.create(
            challenge=challenge, config_id=1, name="Test", codename="test", start_date=start,
            end_date=now + dt.timedelta(days=30), leaderboard_public=True, is_public=True, is_submission_public=True,
        )  # fmt: skip
        split = DatasetSplit.objects.create(challenge=challenge, config_id=1, name="Test", codename="test")
        board = Leaderboard.objects.create(
            challenge=challenge, config_id=1, schema={"labels": ["Accuracy", "F1"], "default_order_by": "Accuracy"}
        )
        ps = ChallengePhaseSplit.objects.create(
            phase=phase, dataset_split=split, leaderboard=board, visibility=3, leaderboard_decimal_precision=4
        )
        first_user = (User.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        bulk_insert(
            User,
            [
                {"id": first_user + i, "username": f"bench{i}", "email": f"bench{i}@team.example", "password": "!"}
                for i in range(teams)
            ],
        )
        bulk_insert(
            ParticipantTeam,
            [{"id": i + 1, "name": f"Team {i:05d}", "created_by_id": first_user + i} for i in range(teams)],
        )
        bulk_insert(
            ParticipantTeamMember, [{"id": i + 1, "team_id": i + 1, "user_id": first_user + i} for i in range(teams)]
        )
        bulk_insert(
            Participation, [{"id": i + 1, "challenge_id": challenge.pk, "team_id": i + 1} for i in range(teams)]
        )
        subs, rows = [], []
        for i in range(entries):
            team = i % teams + 1
            at = start + dt.timedelta(seconds=i * (30 * 86400 / max(entries, 1)))
            baseline = i < 5
            subs.append(
                {
                    "id": i + 1, "phase_id": phase.pk, "participant_team_id": team,
                    "created_by_id": host.pk if i % 50000 == 7 else first_user + team - 1,
                    "submission_number": i // teams + 1, "status": "finished" if i % 97 else "failed",
                    "is_public": baseline or rng.random() < 0.9, "is_flagged": i % 1000 == 3, "is_baseline": baseline,
                    "submitted_at": at, "started_at": at,
                    "completed_at": at + dt.timedelta(seconds=rng.randint(1, 600)),
                }
            )  # fmt: skip
            result = {"Accuracy": round(rng.random(), 6), "F1": round(rng.random(), 6)}
            rows.append(
                {
                    "id": i + 1, "phase_split_id": ps.pk, "submission_id": i + 1, "participant_team_id": team,
                    "result": result, "error": {"error_Accuracy": round(rng.random() / 100, 6)}, "created_at": at,
                }
            )  # fmt: skip
        bulk_insert(Submission, subs)
        bulk_insert(LeaderboardEntry, rows)
        reset_sequences(User, ParticipantTeam, ParticipantTeamMember, Participation, Submission, LeaderboardEntry)
    member = User.objects.get(username="bench0")
    return {"phase_split": ps.pk, "host": host, "member": member}


def analyze(vacuum: bool = False) -> None:
    """Statistics for the planner; ``vacuum`` also sets PostgreSQL's visibility map, as autovacuum
    does on a live server, so counts can read the standings' index alone."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if vacuum and connection.vendor == "postgresql" else "ANALYZE")


def timed(fn, runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], 2),
        "max_ms": round(times[-1], 2),
        "runs": runs,
    }


def evalai_top(ps_id: int, label: str = "Accuracy") -> list[tuple[int, float]]:
    """EvalAI's algorithm: values() of every eligible row with the score extracted by the database,
    then Python sorts by (score, -error) and keeps the first row per team (baselines always)."""
    from assay.server.leaderboards.models import LeaderboardEntry
    from assay.server.leaderboards.services.standings import error_of, value_of

    rows = (
        LeaderboardEntry.objects.filter(
            phase_split_id=ps_id,
            is_disabled=False,
            submission__status="finished",
            submission__is_flagged=False,
            submission__ignore_submission=False,
            submission__is_public=True,
        )
        .exclude(submission__is_baseline=False, submission__created_by__username="bench-host")
        .order_by("-created_at")
        .annotate(filtering_score=value_of(label), filtering_error=error_of(label))
        .values(
            "id", "participant_team_id", "participant_team__name", "result", "error", "filtering_score",
            "filtering_error", "submission__is_baseline", "submission__submitted_at", "submission__method_name",
            "submission__id", "submission__is_public",
        )
    )  # fmt: skip
    ordered = sorted(
        rows, key=lambda r: (float(r["filtering_score"] or 0), float(-(r["filtering_error"] or 0))), reverse=True
    )
    seen, out = set(), []
    for row in ordered:
        if row["submission__is_baseline"]:
            out.append(row)
        elif row["participant_team_id"] not in seen:
            seen.add(row["participant_team_id"])
            out.append(row)
    return [(r["participant_team_id"], r["filtering_score"]) for r in out if not r["submission__is_baseline"]][:PAGE]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=None, help="default: entries / 100")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=None, help="PostgreSQL only; the database is created and dropped")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--output", default=str(HERE / "results" / "leaderboard.json"))
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--label", default=None, help="key of the results in --output (default: the database)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--conn-max-age", type=int, default=0, help="ASSAY_DB_CONN_MAX_AGE; 0 (the default) reconnects per request"
    )
    args = parser.parse_args(argv)
    teams = args.teams or max(1, args.entries // 100)
    where = configure(args)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from assay.server.leaderboards.services.ranking import leaderboard
    from assay.server.leaderboards.services.standings import rebuild

    try:
        call_command("migrate", verbosity=0)
        t = time.perf_counter()
        world = generate(args.entries, teams, args.seed)
        generate_s = time.perf_counter() - t
        ps_id = world["phase_split"]
        analyze()  # bulk-loaded tables have no statistics yet; PostgreSQL would plan for a dozen rows
        t = time.perf_counter()
        standings = rebuild(ps_id)
        rebuild_s = time.perf_counter() - t
        analyze(vacuum=True)

        anonymous, member, host = Client(), Client(), Client()
        member.force_login(world["member"])
        host.force_login(world["host"])
        url = f"/api/v1/phase-splits/{ps_id}/leaderboard"

        def get(client: Client, query: str = "") -> dict:
            response = client.get(url + query)
            assert response.status_code == 200, response.content[:300]
            return response.json()

        first = get(anonymous)
        with CaptureQueriesContext(connection) as queries:  # the service alone: requests reset the log
            leaderboard(None, ps_id)
        queries_per_page = len(queries.captured_queries)  # now: the next request clears the log
        api = {
            "anonymous top-50": timed(lambda: get(anonymous), args.requests),
            "anonymous top-50 order_by=F1": timed(lambda: get(anonymous, "?order_by=F1"), args.requests),
            "anonymous page 100": timed(lambda: get(anonymous, "?page=100"), args.requests),
            "team member top-50": timed(lambda: get(member), args.requests),
            "host top-50 all entries": timed(lambda: get(host, "?entries=all"), args.requests),
        }
        service = timed(lambda: leaderboard(None, ps_id), args.requests)

        ours = [(r["team"]["id"], r["scores"]["Accuracy"]) for r in first["results"] if not r["is_baseline"]][:PAGE]
        baseline_runs, theirs = [], None
        for _ in range(max(1, args.baseline_runs)):
            t = time.perf_counter()
            theirs = evalai_top(ps_id)
            baseline_runs.append((time.perf_counter() - t) * 1000)
        baseline_ms = statistics.median(baseline_runs)
        headline = api["anonymous top-50"]
        result = {
            "database": args.database,
            "vendor": connection.vendor,
            "entries": args.entries,
            "teams": teams,
            "standings_rows": standings,
            "generate_s": round(generate_s, 2),
            "rebuild_standings_s": round(rebuild_s, 2),
            "queries_per_page": queries_per_page,
            "conn_max_age": args.conn_max_age,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "api": api,
            "service_top50": service,
            "evalai_baseline": {"p50_ms": round(baseline_ms, 1), "runs": len(baseline_runs)},
            "speedup_vs_evalai_p50": round(baseline_ms / headline["p50_ms"], 1) if headline["p50_ms"] else None,
            "top50_agrees_with_evalai": ours == theirs,
            "target_p95_ms": 50,
            "meets_target": headline["p95_ms"] <= 50,
            "all_views_meet_target": all(v["p95_ms"] <= 50 for v in api.values()),
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
    finally:
        if not args.keep:
            drop(args, where)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged[args.label or args.database] = result
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"{args.database}: {args.entries:,} entries from {teams:,} teams (standings: {standings:,} rows)")
    timing = f"generate {generate_s:.1f} s, rebuild standings {rebuild_s:.1f} s"
    print(f"  {timing}, {result['queries_per_page']} queries per page")
    for name, numbers in api.items():
        print(f"  API {name:32s} p50 {numbers['p50_ms']:7.2f} ms  p95 {numbers['p95_ms']:7.2f} ms")
    print(f"  service top-50                       p50 {service['p50_ms']:7.2f} ms  p95 {service['p95_ms']:7.2f} ms")
    print(f"  EvalAI-style baseline (load, sort, dedupe) p50 {baseline_ms:9.1f} ms")
    print(f"  ratio baseline / API p50: {result['speedup_vs_evalai_p50']}x; top-50 agrees: {ours == theirs}")
    print(f"  written to {out}")
    return result


if __name__ == "__main__":
    main()
