"""The real evalai CLI (1.3.18) against ``make demo``: a participant's whole session with the demo's own
team, on the platform ``assay demo`` sets up (``demo.seed``), evaluated by the demo's in-process worker.

Every id the session uses comes from the CLI's own output, as a participant would read it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.factories import DEMO_BUNDLE, REPO

from .test_evalai_cli import EVALAI, SUBMISSIONS, Cli

CONTAINER_BUNDLE = REPO / "examples" / "demo-container-challenge"
PASSWORD = "demo"  # assay demo's default (ASSAY_DEMO_PASSWORD)

pytestmark = [
    pytest.mark.skipif(not Path(EVALAI).exists(), reason="evalai CLI not installed: make install-evalai"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    assert len(found) == 1, (pattern, text)
    return int(found[0])


def _cells(table: str) -> list[list[str]]:
    """The rows of one of the CLI's tables (colours removed), as lists of stripped cells."""
    rows = []
    for line in ANSI.sub("", table).splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_participant_session_on_the_demo(live_server, media, settings, tmp_path):
    from assay.server import demo, inprocess_worker

    settings.VAR_DIR = tmp_path / "var"
    lines = list(demo.seed(PASSWORD, str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site=live_server.url))
    title = "Assay Demo — Spot the Even Numbers"
    challenge = _one(rf"Demo challenge '{title}' \(id (\d+)\)", "\n".join(lines))
    worker = inprocess_worker.start(live_server.url)
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    cli = Cli(home, cwd)
    try:
        _session(cli, live_server.url, challenge, title, cwd)
    finally:
        worker.stop()


def _session(cli: Cli, url: str, c: int, title: str, cwd: Path) -> None:
    token_file = cwd.parent / "home" / ".evalai" / "token.json"
    assert f"{url} is set as the host url" in cli("host", "-sh", url)
    assert "Logged in successfully!" in cli("login", input=f"participant\n{PASSWORD}\n")
    token = json.loads(token_file.read_text())["token"]
    assert "Logged in successfully!" in cli("login", input=f"participant\n{PASSWORD}\n")
    assert json.loads(token_file.read_text())["token"] == token  # get_auth_token: the same token again

    listed = {row[0]: row[1] for row in _cells(cli("challenges"))}
    assert listed[str(c)] == title
    assert str(c) in {row[0] for row in _cells(cli("challenges", "ongoing"))}
    details = ANSI.sub("", cli("challenge", str(c)))
    assert "Spot the even numbers" in details and "01/01/24" in details

    phases = {row[1]: int(row[0]) for row in _cells(cli("challenge", str(c), "phases")) if row[0].isdigit()}
    assert set(phases) == {"Development", "Test"}
    dev = phases["Development"]
    detail = cli("challenge", str(c), "phase", str(dev))
    assert f"Development Challenge ID: {c} Phase ID: {dev}" in detail and "Code Name : dev" in detail
    splits = _cells(cli("challenge", str(c), "phase", str(dev), "splits"))
    public = [int(row[0]) for row in splits if row[1:] == ["Public split", "Development"]]
    assert len(public) == 1 and not any(row[1] == "Private split" for row in splits)  # visibility 1: hosts only

    # the demo registered its own team without the terms: participate (terms shown, accepted) takes it in
    teams = {row[1]: int(row[0]) for row in _cells(cli("teams", "--participant")) if row[0].isdigit()}
    team = teams["Demo participants"]
    out = cli("challenge", str(c), "participate", str(team), input="y\n")
    assert (
        f"Please refer challenge terms and conditions here: {url}/web/challenges/challenge-page/{c}/evaluation" in out
    )
    assert f"Your team id {team} is now participating in this challenge." in out
    assert str(c) in {row[0] for row in _cells(cli("challenges", "--participant"))}

    perfect = cwd / "dev_perfect.json"
    perfect.write_bytes((SUBMISSIONS / "dev_perfect.json").read_bytes())
    out = cli("challenge", str(c), "phase", str(dev), "submit", "--file", perfect.name, input="n\nn\n")
    sub = _one(r"Your file dev_perfect.json with the ID (\d+) is successfully submitted", out)
    assert "Demo participants Submission ID" in _wait_finished(cli, sub)

    mine = _cells(cli("challenge", str(c), "phase", str(dev), "submissions"))
    assert [(row[0], row[1], row[3]) for row in mine[1:]] == [(str(sub), "Demo participants", "finished")]
    assert json.loads(cli("submission", str(sub), "result")) == {"public": {"Accuracy": 1.0, "F1": 1.0}}

    board = _cells(cli("challenge", str(c), "leaderboard", str(public[0])))
    assert board[0][:4] == ["Rank", "Participant Team", "Accuracy", "F1"]
    assert [row[:4] for row in board[1:]] == [["1", "Demo participants", "1.0", "1.0"]]


def _wait_finished(cli: Cli, sub: int, seconds: float = 180) -> str:
    import time

    deadline = time.monotonic() + seconds
    while True:
        out = cli("submission", str(sub))
        if "Submission Status : finished" in out:
            return out
        assert "Submission Status : failed" not in out and time.monotonic() < deadline, out
        time.sleep(1)
