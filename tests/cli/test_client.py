"""The assay CLI over HTTP against a live server: the participant's day and the host's day."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli.main import app
from tests.factories import REPO

pytestmark = pytest.mark.django_db(transaction=True)
DEMO = REPO / "examples" / "demo-challenge"
SUBMISSIONS = REPO / "examples" / "demo-submissions"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("ASSAY_TOKEN", raising=False)
    monkeypatch.delenv("ASSAY_SERVER", raising=False)
    runner = CliRunner()

    def call(*args: str, input: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        out = result.output
        assert result.exit_code == code, f"assay {' '.join(args)} → {result.exit_code}:\n{out}"
        assert "Error: None" not in out
        return out

    return call


def _worker(url: str, jobs: int, workdir: Path) -> threading.Thread:
    """A real worker in a thread, with a folder of the test's own (tests run in parallel)."""
    from assay.server.submissions.services.tokens import create_worker_token
    from assay.worker import Worker, WorkerClient

    token = create_worker_token(None, "cli test")[1]
    worker = Worker(WorkerClient(url, token, retry_for=10), workdir, poll_wait=1)

    def run() -> None:
        try:
            worker.run(max_jobs=jobs)
        finally:
            worker.client.close()  # a kept-alive connection keeps a live-server thread and its database session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_participant_day(live_server, world, users, run, tmp_path):
    url = live_server.url
    challenge = world["challenge"]
    dev = challenge.phases.get(codename="dev")
    assert "wrong username or password" in run("login", "--server", url, "-u", "alice", "--password", "nope", code=1)
    assert "logged in" in run("login", "--server", url, "--name", "local", "-u", "alice", "--password", "pw")
    assert "alice" in run("whoami")
    assert json.loads(run("whoami", "--json"))["participant_teams"][0]["name"] == "Team Alice"
    assert "Spot" in run("challenges", "list")
    shown = run("challenges", "show", str(challenge.pk))
    assert "dev" in shown and "Accuracy" in shown
    assert "dev" in run("phases", str(challenge.pk))
    created = json.loads(run("teams", "create", "Alice Two", "--json"))
    assert "Alice Two" in run("teams", "list")
    out = run("participate", str(world["other_challenge"].pk), "--team", str(created["id"]), input="y\n")
    assert "Terms and conditions" in out and "takes part" in out
    out = run("participate", str(challenge.pk), "--team", str(world["teams"]["participant"].pk))
    assert "already takes part" in out
    # registered by a host (as the demo seeds it), terms not yet accepted: submitting says how, participate does it
    from assay.server.challenges.models import Participation

    Participation.objects.filter(challenge=challenge).update(terms_accepted_at=None)
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", str(dev.pk), code=1)
    assert "terms_not_accepted" in out and "assay participate" in out
    out = run("participate", str(challenge.pk), "--team", str(world["teams"]["participant"].pk), "--yes")
    assert "Terms and conditions" in out and "takes part" in out
    assert Participation.objects.get(challenge=challenge, team=world["teams"]["participant"]).terms_accepted_at

    thread = _worker(url, jobs=1, workdir=tmp_path / "worker")
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", str(dev.pk), "--method-name", "cli",
              "--meta", "uses_modulo=true", "--wait")  # fmt: skip
    thread.join(timeout=120)
    assert "finished" in out and "Accuracy" in out
    rows = json.loads(run("submissions", "--phase", str(dev.pk), "--json"))
    sid = rows[0]["id"]
    assert rows[0]["status"] == "finished" and rows[0]["method_name"] == "cli"
    assert "Accuracy" in run("result", str(sid))
    run("stdout", str(sid))
    assert "finished" in run("submission", str(sid))
    ps = challenge.phases.get(codename="dev").phase_splits.get(dataset_split__codename="public")
    board = run("leaderboard", str(ps.pk))
    assert "Team Alice" in board and "Accuracy" in board
    assert json.loads(run("leaderboard", str(ps.pk), "--json"))["results"]
    # errors say what to do
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", "999999", code=1)
    assert "no such phase" in out
    token = json.loads(run("token", "create", "ci", "--json"))
    assert token["token"].startswith("ap_")
    run("token", "revoke", str(token["id"]))
    run("logout")
    assert "Not logged in" in run("whoami", "--server", "local", code=2)


def test_resumable_upload(live_server, world, users, run, tmp_path):
    """An interrupted upload resumes: parts already on the server are not sent again."""
    from assay.cli import client_config, client_participant
    from assay.server.submissions.models import Submission

    run("login", "--server", live_server.url, "-u", "alice", "--password", "pw")
    dev = world["challenge"].phases.get(codename="dev")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"pad": "x" * (3 * 1024 * 1024)}))
    api = client_config.client(None)
    sent: list[int] = []
    original = api.request

    def flaky(method, path, **kw):
        if method == "PUT":
            sent.append(int(path.rsplit("/", 1)[-1]))
            if len(sent) == 1:
                raise client_config.ApiError(0, "unreachable", "connection dropped")
        return original(method, path, **kw)

    api.request = flaky
    fields = {"is_public": None, "submission_metadata": None}
    # first try: the failing part is retried in place
    try:
        sub = client_participant.upload_file(api, dev.pk, big, fields, quiet=True)
    finally:
        api.close()
    assert Submission.objects.get(pk=sub["id"]).input_file_size == big.stat().st_size


def test_host_day(live_server, world, users, run, tmp_path):
    url = live_server.url
    run("login", "--server", url, "-u", "host1", "--password", "pw")
    team = world["host_team"]
    out = run("host", "challenge", "create", str(DEMO), "--host-team", str(team.pk))
    assert "created" in out
    new_id = int(out.split("(id ")[1].split(")")[0])
    assert "updated" in run("host", "challenge", "update", str(new_id), str(DEMO))
    assert "valid" in run("host", "bundle", "validate", str(DEMO))
    export = tmp_path / "subs.csv"
    assert "wrote" in run("host", "submissions", "export", str(world["challenge"].pk), "-o", str(export))
    assert export.read_text().startswith("id,phase,team")
    assert "remote" in run("host", "worker-token", "create", str(new_id), code=1)
    # a host's re-run evaluates the same submission again, and says so (not as if it were a new one)
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from tests.factories import finish, upload

    phase = world["challenge"].phases.get(codename="dev")
    done = finish(submit(users["participant"], phase, upload(), "p.json", SubmissionFields()))
    out = run("host", "rerun", str(done.pk))
    assert f"submission {done.pk} re-run in place: evaluation 2 is queued" in out and "queued again as" not in out
    out = run("host", "challenge", "create", str(tmp_path), "--host-team", str(team.pk), code=1)
    assert "invalid" in out or "bundle" in out


def test_bundle_test_runs_locally(run, tmp_path):
    out = run("host", "bundle", "test", str(DEMO), str(SUBMISSIONS / "dev_perfect.json"), "--phase", "dev",
              "--sandbox", "auto")  # fmt: skip
    assert "finished" in out and "Accuracy" in out


def test_help_reads_well(run):
    top = run("--help")
    for command in ("login", "whoami", "submit", "leaderboard", "host", "participate"):
        assert command in top
    assert "resumable" in run("submit", "--help")
    assert "sandbox" in run("host", "bundle", "test", "--help")
