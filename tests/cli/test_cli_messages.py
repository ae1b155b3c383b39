"""The CLI's rough edges of issue 17, each checked on the real command's output against a live server: text
from the server printed as it is (not as Rich markup), the leaderboard with a private own entry, phase codenames,
hints only where a refusal calls for them, ``--wait`` polling, the upload rate, login, bundle errors, the JSON
export."""

from __future__ import annotations

import json
import shutil

import pytest

from assay.cli import client_participant
from tests.factories import finish

from .test_client import DEMO, SUBMISSIONS, run  # noqa: F401  (run is a fixture)

pytestmark = pytest.mark.django_db(transaction=True)
REASON = 'the file must be {"predictions": [number, ...]}, one [bold]per case[/bold]'


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    """A wide terminal, so a table row or a message is one line to look for (the runner's is 80 columns)."""
    from assay.cli import output

    for console in (output.console, output.err_console):
        monkeypatch.setattr(console, "_width", 160)


@pytest.fixture
def alice(live_server, world, users, run):  # noqa: F811
    run("login", "--server", live_server.url, "-u", "alice", "--password", "pw")
    return world


def _submit(run, *args: str) -> int:  # noqa: F811
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--json", *args)
    return json.loads(out[out.index("{") :])["id"]


def test_failure_reasons_and_names_print_as_written(alice, run):  # noqa: F811
    from assay.server.submissions.models import Submission

    dev = alice["challenge"].phases.get(codename="dev")
    sid = _submit(run, "--phase", str(dev.pk), "--method-name", "[red]m[/red]")
    Submission.objects.filter(pk=sid).update(status="failed", failure_reason=REASON)
    out = run("submission", str(sid))
    assert REASON in out
    assert "[red]m[/red]" in run("submissions", "--phase", str(dev.pk))


def test_leaderboard_shows_a_private_own_entry_with_precision_method_and_time(alice, run):  # noqa: F811
    from assay.server.submissions.models import Submission

    dev = alice["challenge"].phases.get(codename="dev")
    ps = dev.phase_splits.get(dataset_split__codename="public")
    type(ps).objects.filter(pk=ps.pk).update(leaderboard_decimal_precision=3, show_execution_time=True)
    sid = _submit(run, "--phase", str(dev.pk), "--private", "--method-name", "my-method")
    sub = finish(Submission.objects.get(pk=sid), {"result": [{"public": {"Accuracy": 0.91234, "F1": 0.5}}]})
    assert not sub.is_public
    board = run("leaderboard", str(ps.pk))
    assert "Team Alice (yours, private)" in board
    assert "0.912" in board and "0.91234" not in board  # the split's three decimals
    assert "my-method" in board and "method" in board and "run time" in board
    assert f"{sub.submitted_at:%Y-%m-%d %H:%M}" in board and "submitted (UTC)" in board
    assert "(1)" in board and "not on the public leaderboard" in board
    assert "no entries yet" in run("leaderboard", str(alice["other_challenge"].phases.get(codename="dev")
                                                    .phase_splits.first().pk))  # fmt: skip


def test_a_phase_is_named_by_codename_or_name(alice, run):  # noqa: F811
    from assay.server.submissions.models import Submission

    dev = alice["challenge"].phases.get(codename="dev")
    sid = _submit(run, "--phase", "dev")
    assert Submission.objects.get(pk=sid).phase == dev
    sid = _submit(run, "--phase", dev.name.upper(), "--challenge", str(alice["challenge"].pk))
    assert Submission.objects.get(pk=sid).phase == dev
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", "nope", code=2)
    assert "no phase 'nope' in the challenges you take part in" in out
    assert f"{dev.pk}  dev" in out and "test" in out and "pydantic" not in out.lower()
    assert "Phase ID" not in run("submissions", "--phase", "dev")


def test_hints_follow_only_the_refusals_that_call_for_them(alice, run):  # noqa: F811
    dev = alice["challenge"].phases.get(codename="dev")
    type(dev).objects.filter(pk=dev.pk).update(max_submissions_per_day=0)
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", "dev", code=1)
    assert "submissions for today (0) has been reached" in out and "(limit_day)" in out
    assert "→" not in out and "right team" not in out
    out = run("submission", "999999", code=1)
    assert "→ check the id" in out  # a bare not-found: the generic hint fits


def test_result_ends_with_a_newline_and_wait_polls_quickly_then_backs_off(alice, run, monkeypatch):  # noqa: F811
    from assay.server.submissions.models import Submission

    dev = alice["challenge"].phases.get(codename="dev")
    out = run("submit", str(SUBMISSIONS / "dev_perfect.json"), "--phase", "dev")
    assert "/s" in out and "?" not in out.split("uploading")[1].splitlines()[0]  # the rate column has a rate
    sid = Submission.objects.get(phase=dev).pk
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 4:  # the worker finishes while the CLI waits
            finish(Submission.objects.get(pk=sid))

    monkeypatch.setattr(client_participant.time, "sleep", sleep)
    out = run("submission", str(sid), "--wait")
    assert "finished" in out and "Accuracy" in out
    assert pauses == pytest.approx([0.1, 0.15, 0.225, 0.3375])
    assert max(_first(client_participant.poll_delays(), 20)) == 2.0  # never slower than it was
    text = run("result", str(sid))
    assert text.endswith("]\n") and json.loads(text)


def _first(delays, n: int) -> list[float]:
    return [next(delays) for _ in range(n)]


def test_login_checks_the_server_first_and_keeps_the_default(live_server, world, users, run):  # noqa: F811
    out = run("login", "--server", "http://127.0.0.1:9", code=1, input="alice\npw\n")
    assert "cannot reach http://127.0.0.1:9" in out and "Username" not in out and "Password" not in out
    out = run("login", "--server", live_server.url, "--name", "one", input="alice\npw\n")
    assert "Username" in out and "Password" in out and "logged in" in out
    out = run("login", "--server", live_server.url, "--name", "two", "-u", "host1", "--password", "pw")
    assert "the default server stays 'one'" in out and "--server two" in out
    assert "alice" in run("whoami")
    out = run("login", "--server", live_server.url, "--name", "two", "-u", "host1", "--password", "pw", "--default")
    assert "'two' is now the default server (it was 'one')" in out
    assert "host1" in run("whoami")


def test_challenge_create_prints_every_bundle_error_in_plain_words(live_server, world, users, run, tmp_path):  # noqa: F811
    run("login", "--server", live_server.url, "-u", "host1", "--password", "pw")
    team = str(world["host_team"].pk)
    bad = shutil.copytree(DEMO, tmp_path / "two-errors")
    (bad / "templates" / "description.html").unlink()
    (bad / "templates" / "evaluation_details.html").unlink()
    out = run("host", "challenge", "create", str(bad), "--host-team", team, code=1)
    assert "the bundle is invalid: 2 errors" in out
    assert out.count("file_not_found") == 2 and "None" not in out
    assert "[description]" in out and "[evaluation_details]" in out
    broken = shutil.copytree(DEMO, tmp_path / "yaml")
    config = broken / "challenge_config.yaml"
    lines = config.read_text().splitlines()
    where = lines.index("  - rank: 1")
    lines.insert(where + 1, "   amount: 1")  # one space short of the key above
    config.write_text("\n".join(lines) + "\n")
    out = run("host", "challenge", "create", str(broken), "--host-team", team, code=1)
    assert f"challenge_config.yaml:{where + 2}" in out and "indentation does not line up" in out
    assert "<block end>" not in out and "None" not in out and "\\[" not in out


def test_export_writes_json_results(live_server, alice, run, tmp_path):  # noqa: F811
    from assay.server.submissions.models import Submission

    sid = _submit(run, "--phase", "dev")
    finish(Submission.objects.get(pk=sid), {"result": [{"public": {"Accuracy": 0.5, "F1": None}}]})
    target = tmp_path / "subs.json"
    run("login", "--server", live_server.url, "-u", "host1", "--password", "pw")
    out = run("host", "submissions", "export", str(alice["challenge"].pk), "-o", str(target), "--phase", "dev")
    assert "wrote" in out and "(1 submissions)" in out
    rows = json.loads(target.read_text())
    assert rows[0]["output"]["result"] == [{"public": {"Accuracy": 0.5, "F1": None}}]
    csv = tmp_path / "subs.csv"
    run("host", "submissions", "export", str(alice["challenge"].pk), "-o", str(csv))
    text = csv.read_text()  # PostgreSQL's jsonb keeps its own key order
    assert ("public: Accuracy=0.5, F1=—" in text or "public: F1=—, Accuracy=0.5" in text) and "None" not in text
