"""The real evalai CLI (1.3.18, from PyPI) against a live Assay server, as a participant and a host use it.

``make test`` installs it into .venv-evalai (see the Makefile) and points ASSAY_EVALAI_CLI at it;
PYTHONPATH adds ``evalai_offline/sitecustomize.py``, which answers its start-up PyPI version check
locally. Submissions are evaluated by Assay's real worker (sandboxed), over HTTP, in a thread.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.factories import REPO, make_user, token_for

EVALAI = os.environ.get("ASSAY_EVALAI_CLI") or str(REPO / ".venv-evalai" / "bin" / "evalai")
OFFLINE = Path(__file__).parent / "evalai_offline"
SUBMISSIONS = REPO / "examples" / "demo-submissions"

pytestmark = [
    pytest.mark.skipif(not Path(EVALAI).exists(), reason="evalai CLI not installed: make install-evalai"),
    pytest.mark.django_db(transaction=True),
]


class Cli:
    def __init__(self, home: Path, cwd: Path) -> None:
        self.env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(OFFLINE),
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
        }
        self.cwd = cwd

    def __call__(self, *args: str, input: str = "", ok: bool = True) -> str:
        proc = subprocess.run(
            [EVALAI, *args], input=input, capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=120
        )
        out = proc.stdout + proc.stderr
        if ok:
            assert proc.returncode == 0, f"evalai {' '.join(args)} exited {proc.returncode}:\n{out}"
        assert "Error: None" not in out
        assert "Traceback" not in out, out
        return out


def _worker(live_server, jobs: int) -> threading.Thread:
    from assay.server.submissions.services.tokens import create_worker_token
    from assay.worker import Worker, WorkerClient

    token = create_worker_token(None, "evalai-cli test")[1]
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"assay-evalai-worker-{os.getpid()}"
    worker = Worker(WorkerClient(live_server.url, token, retry_for=10), workdir, poll_wait=1)

    def run() -> None:
        try:
            worker.run(max_jobs=jobs)
        finally:
            worker.client.close()  # a kept-alive connection keeps a live-server thread and its database session

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _ids(text: str, what: str) -> list[int]:
    return [int(x) for x in re.findall(what, text)]


def test_evalai_cli_session(live_server, world, users, tmp_path, settings):
    from assay.server.challenges.models import ChallengePhaseSplit
    from assay.server.submissions.models import Submission

    challenge = world["challenge"]
    dev = challenge.phases.get(codename="dev")
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    cli = Cli(home, cwd)
    url = live_server.url

    # host -sh, then login (prompted), which swaps the login token for a long-lived one
    assert "is set as the host url" in cli("host", "-sh", url)
    assert url in cli("host")
    carol = make_user("carol")
    out = cli("login", input="carol\npw\n")
    assert "Logged in successfully" in out
    assert "Unable to log in" in cli("login", input="carol\nwrong\n", ok=False)

    # browse
    out = cli("challenges")
    assert challenge.title[:20] in out and "Hosts One" in out
    assert challenge.title[:20] in cli("challenges", "ongoing")
    assert "Sorry, no challenges found" in cli("challenges", "past")
    assert "Sorry, no challenges found" in cli("challenges", "future")
    out = cli("challenge", str(challenge.pk))
    assert "Spot" in out or "even" in out.lower()
    out = cli("challenge", str(challenge.pk), "phases")
    assert "Development" in out and "Test" in out
    out = cli("challenge", str(challenge.pk), "phase", str(dev.pk))
    assert "Development" in out and "Code Name : dev" in out
    assert '"codename": "dev"' in cli("challenge", str(challenge.pk), "phase", str(dev.pk), "--json")
    out = cli("challenge", str(challenge.pk), "phase", str(dev.pk), "splits")
    assert "Public split" in out and "Private split" not in out  # visibility 1 stays hidden

    # teams: create one, take part (the CLI shows the terms first)
    out = cli("teams", "create", "participant", input="Carol's Crew\ny\nn\n")
    assert "successfully created" in out
    out = cli("teams", "create", "participant", input="Carol's Crew\ny\nn\n", ok=False)
    assert "already exists" in out
    out = cli("teams", "--participant")
    assert "Carol's Crew" in out and "carol" in out
    team_id = int(re.search(r"(\d+)\s*\|\s*Carol's Crew", out).group(1))
    out = cli("challenge", str(challenge.pk), "participate", str(team_id), input="y\n")
    assert "is now participating" in out
    assert "already" in cli("challenge", str(challenge.pk), "participate", str(team_id), input="y\n", ok=False)
    assert challenge.title[:20] in cli("challenges", "--participant")

    # submit: details and meta attributes answered at the prompts
    perfect = cwd / "dev_perfect.json"
    perfect.write_bytes((SUBMISSIONS / "dev_perfect.json").read_bytes())
    answers = "y\nmy method\nit is perfect\nhttps://example.org/p\n\ny\ntrue\n"
    out = cli(
        "challenge", str(challenge.pk), "phase", str(dev.pk), "submit", "--file", "dev_perfect.json", input=answers
    )
    first = _ids(out, r"with the ID (\d+) is successfully submitted")[0]
    sub = Submission.objects.get(pk=first)
    assert sub.method_name == "my method" and sub.project_url == "https://example.org/p"
    assert sub.submission_metadata[0]["name"] == "uses_modulo" and sub.submission_metadata[0]["value"] is True

    # --large: Assay hands out its own part URLs instead of S3's; --private is honoured
    even = cwd / "dev_all_even.json"
    even.write_bytes((SUBMISSIONS / "dev_all_even.json").read_bytes())
    out = cli(
        "challenge", str(challenge.pk), "phase", str(dev.pk), "submit", "--file", "dev_all_even.json", "--large",
        "--private", input="n\nn\n",
    )  # fmt: skip
    large = _ids(out, r"with the id (\d+) is successfully submitted")[0]
    sub = Submission.objects.get(pk=large)
    assert sub.status == "submitted" and sub.input_file_size == even.stat().st_size and sub.is_public is False

    thread = _worker(live_server, jobs=2)
    thread.join(timeout=180)
    assert Submission.objects.get(pk=first).status == "finished", Submission.objects.get(pk=first).failure_reason
    assert Submission.objects.get(pk=large).status == "finished"

    out = cli("challenge", str(challenge.pk), "phase", str(dev.pk), "submit", "--file", "dev_perfect.json", "--public",
              input="n\nn\n")  # fmt: skip
    public = _ids(out, r"with the ID (\d+) is successfully submitted")[0]
    assert Submission.objects.get(pk=public).is_public is True

    out = cli("challenge", str(challenge.pk), "phase", str(dev.pk), "submissions")
    assert str(first) in out and str(large) in out and "finished" in out

    out = cli("submission", str(first))
    assert "finished" in out and "Carol's Crew" in out
    out = cli("submission", str(first), "result")
    assert "Accuracy" in out and "1.0" in out
    assert "yet to be evaluated" in cli("submission", str(public), "result")

    ps = ChallengePhaseSplit.objects.get(phase=dev, dataset_split__codename="public")
    out = cli("challenge", str(challenge.pk), "leaderboard", str(ps.pk))
    assert "Carol's Crew" in out and "Accuracy" in out
    hidden = ChallengePhaseSplit.objects.get(phase__challenge=challenge, visibility=1)
    assert "not public" in cli("challenge", str(challenge.pk), "leaderboard", str(hidden.pk), ok=False)

    # download_file: a URL on this host with ?bucket=&key= → a signed URL served by Assay
    key = Submission.objects.get(pk=first).submission_result_file.name
    out = cli("download_file", f"{url}/files?bucket=assay&key={key}")
    assert "successfully downloaded" in out
    assert b"Accuracy" in (cwd / key.rsplit("/", 1)[-1]).read_bytes()

    # someone else's submission is not found, whoever asks
    bob_sub = Submission.objects.create(
        phase=dev, participant_team=world["teams"]["other_participant"], created_by=users["other_participant"]
    )
    assert "does not exist" in cli("submission", str(bob_sub.pk), ok=False)

    # set_token with a token made in Assay; a host's view
    assert "successfully set" in cli("set_token", token_for(users["host"]))
    out = cli("challenges", "--host")
    assert "Hosted Challenges" in out and challenge.title[:20] in out
    out = cli("teams", "--host")
    assert "Hosts One" in out
    out = cli("teams", "create", "host", input="Carol Hosts\ny\ny\nhttps://example.org\n")
    assert "host team Carol Hosts was successfully created" in out

    # a revoked or unknown token: the CLI's own words, never "Error: None"
    cli("set_token", "ap_not-a-real-token")
    assert "isn't valid" in cli("challenges", "--participant", ok=False)
    assert carol.pk
