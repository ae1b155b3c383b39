"""The production stack's processes, started natively: what deploy/compose/compose.yaml runs, without Docker.

A fresh PostgreSQL database, moto's S3 API server (tests/s3.py), ``assay manage migrate`` (the compose
``migrate`` service), gunicorn with deploy/gunicorn.conf.py and 2 processes (``server``), ``assay admin
run-tasks`` (``tasks``) and 2 ``assay worker`` processes with a token from ``assay admin worker-token
create`` (what up.sh does). A participant then works only over HTTP: signs in, makes a team, registers,
submits twice, and both submissions reach the leaderboard; their files are in the bucket and nowhere on
the server's disk. Every process is stopped at the end and the database dropped.

Skips only when PostgreSQL does not answer on 127.0.0.1:5432 (.ci/run starts it for its second pass).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import DEMO_BUNDLE, stored_files
from tests.s3 import S3Server, s3_settings

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
PERFECT = DEMO_BUNDLE.parent / "demo-submissions" / "dev_perfect.json"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PASSWORD = "stack-pw-1"
SETUP = f"""
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
for name in ("host", "alice"):
    user = get_user_model().objects.create_user(name, name + "@example.org", {PASSWORD!r})
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
"""
# An imported challenge waits for an administrator's approval (the admin site); here, the shell.
APPROVE = "from assay.server.challenges.models import Challenge; Challenge.objects.update(approved_by_admin=True)"


def postgres_admin():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **PG)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432 (.ci/run starts it for its second pass): {exc}")


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards (whatever is still connected)."""
    name = f"assay_stack_{uuid.uuid4().hex[:10]}"
    with postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """The processes of one stack; each in its own session, so stopping one stops its children."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, {}
        logs.mkdir()

    def run(self, *args: str) -> str:
        """A one-shot command (migrate, a token, setup); its output, or the test fails with it."""
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        print(f"{time.monotonic() - began:5.1f} s  {' '.join(args[1:4])}")
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"stopped: {dead}\n{self.tail()}"

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.iterdir()))

    def stop(self) -> dict[str, int]:
        """SIGTERM, workers first (as `docker compose down` stops dependents first), SIGKILL after 20 s."""
        codes = {}
        for name, proc in sorted(self.procs.items(), key=lambda item: not item[0].startswith("worker")):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                codes[name] = proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait()
        return codes


def wait_for(predicate, what: str, stack: Stack, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{stack.tail()}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_stack_runs_a_submission_to_the_leaderboard(database: str, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_") or k == "ASSAY_ENVIRONMENTS_DIR"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes the server's own, as in the image
    env.update(s3_settings(s3_server.endpoint, bucket))
    env.update(
        DJANGO_SETTINGS_MODULE="assay.server.settings",
        ASSAY_DATABASE_URL=database,
        ASSAY_VAR_DIR=str(var),
        ASSAY_SECRET_KEY=uuid.uuid4().hex,
        ASSAY_ALLOWED_HOSTS="127.0.0.1,localhost",
        ASSAY_TASKS_INPROCESS="0",
        ASSAY_BIND=f"127.0.0.1:{port}",
        ASSAY_WEB_PROCESSES="2",
        ASSAY_WEB_THREADS="8",
        # gunicorn's graceful stop waits for open requests, a worker's claim among them: keep it short here.
        ASSAY_LONG_POLL_SECONDS="3",
    )
    stack = Stack(env, tmp_path / "logs")
    try:
        # up.sh's order: migrate; then server and tasks (starting while the operator's one-shot commands
        # run: users, the challenge, its approval), the workers' token, and the workers.
        stack.run("assay.cli.main", "manage", "migrate", "--noinput", "--verbosity", "0")
        stack.start("server", "gunicorn", "--config", str(GUNICORN_CONF), "assay.server.wsgi")
        stack.start("tasks", "assay.cli.main", "admin", "run-tasks")
        stack.run("assay.cli.main", "manage", "shell", "-c", SETUP)
        report = json.loads(
            stack.run(
                "assay.cli.main",
                "admin",
                "import-bundle",
                str(DEMO_BUNDLE),
                "--host-team",
                "Hosts",
                "--create-team",
                "--user",
                "host",
                "--json",
            )  # fmt: skip
        )
        stack.run("assay.cli.main", "manage", "shell", "-c", APPROVE)
        token = json.loads(stack.run("assay.cli.main", "admin", "worker-token", "create", "--name", "stack", "--json"))
        for n in (1, 2):
            stack.start(
                f"worker-{n}", "assay.cli.main", "worker", "--server", url, "--workdir", str(tmp_path / f"w{n}"),
                "--containers", "off", env={"ASSAY_WORKER_TOKEN": token["token"]},
            )  # fmt: skip
        wait_for(lambda: answers(f"{url}/healthz"), "the server's /healthz", stack)
        began = time.monotonic()
        participate_and_submit(url, report["challenge_id"], stack)
        print(f"{time.monotonic() - began:5.1f} s  sign in, register, 2 submissions to the leaderboard")

        # Static files come from gunicorn itself (WhiteNoise), with no web server in front.
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200
        css = next(part.split('"')[0] for part in page.text.split('href="')[1:] if part.split('"')[0].endswith(".css"))
        static = httpx.get(f"{url}{css}" if css.startswith("/") else f"{url}/{css}", timeout=10)
        assert static.status_code == 200 and "text/css" in static.headers["content-type"], css
        # /metrics sums gunicorn's processes (the multi-process folder gunicorn.conf.py set up): the two
        # evaluations were reported to whichever process took each request.
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200, metrics.text
        evaluated = [line for line in metrics.text.splitlines() if line.startswith("assay_evaluation_seconds_count")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in evaluated) == 2, evaluated
        # Both gunicorn processes and every worker are up to the end; the files are only in the bucket.
        stack.check_alive()
        keys = s3_server.keys(bucket)
        assert [k for k in keys if k.endswith("preds.json")], keys
        assert not (var / "media").exists() or not stored_files(var / "media")
    finally:
        codes = stack.stop()
    # Every process stops on SIGTERM by itself (a worker hands its job back; gunicorn finishes requests).
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, stack.tail())


def participate_and_submit(url: str, challenge: int, stack: Stack) -> None:
    """What a participant does, over HTTP only: sign in, make a team, register, submit twice, read the board."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as api:
        login = api.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 201, login.text
        api.headers["Authorization"] = f"Token {login.json()['token']}"
        team = api.post("/teams", json={"name": "Team Stack"})
        assert team.status_code == 201, team.text
        joined = api.post(
            f"/challenges/{challenge}/participation", json={"team": team.json()["id"], "accept_terms": True}
        )
        assert joined.status_code == 201, joined.text
        boards = api.get(f"/challenges/{challenge}/leaderboards").json()["leaderboards"]
        board = next(b for b in boards if b["phase"] == "dev")
        phases = api.get(f"/challenges/{challenge}/phases").json()
        dev = next(p for p in (phases["results"] if isinstance(phases, dict) else phases) if p["codename"] == "dev")
        ids = []
        for _ in range(2):
            with PERFECT.open("rb") as fh:
                sent = api.post(f"/phases/{dev['id']}/submissions", files={"input_file": ("preds.json", fh)})
            assert sent.status_code == 201, sent.text
            ids.append(sent.json()["id"])

        def finished() -> bool:
            details = [api.get(f"/submissions/{sid}").json() for sid in ids]
            assert not [d for d in details if d["status"] in ("failed", "cancelled")], details
            return all(d["status"] == "finished" for d in details)

        wait_for(finished, "both submissions to finish", stack)
        rows = api.get(f"/phase-splits/{board['id']}/leaderboard").json()["results"]
        ours = [row for row in rows if row["team"]["name"] == "Team Stack"]
        assert len(ours) == 1 and ours[0]["submission"]["id"] in ids, rows
        assert ours[0]["scores"] == {"Accuracy": 1.0, "F1": 1.0}, ours
