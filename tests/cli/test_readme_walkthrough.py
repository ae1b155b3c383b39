"""The README's participant walkthrough ("A first submission from the command line"), run line by line as written
against a live server and a real worker: each upper-case id is filled in from what an earlier command printed."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.factories import REPO, make_user

from .test_client import _worker, run  # noqa: F401  (run is a fixture)

pytestmark = pytest.mark.django_db(transaction=True)
HEADING = "### A first submission from the command line"
DEMO_URL = "http://127.0.0.1:8000"


def walkthrough() -> list[str]:
    """The lines of the section's first ``sh`` block."""
    text = (REPO / "README.md").read_text()
    assert text.count(HEADING) == 1
    block = text.split(HEADING, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    from assay.cli import output

    for console in (output.console, output.err_console):
        monkeypatch.setattr(console, "_width", 160)


def test_the_readme_walkthrough_runs_as_written(live_server, world, run, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.chdir(REPO)  # the walkthrough names the demo's submission file from the checkout's root
    make_user("carol", password="a-carol-password")  # new here: no team yet
    challenge = world["challenge"]
    board = challenge.phases.get(codename="dev").phase_splits.get(dataset_split__codename="public")
    lines = walkthrough()
    assert lines[0].startswith("pip install .") and all(line.startswith("assay ") for line in lines[1:])
    ids: dict[str, str] = {"CHALLENGE": str(challenge.pk), "LEADERBOARD": str(board.pk)}
    thread = _worker(live_server.url, jobs=1, workdir=tmp_path / "worker")
    outputs: dict[str, str] = {}
    for line in lines[1:]:
        args = shlex.split(line.replace(DEMO_URL, live_server.url), comments=True)[1:]
        args = [ids.get(a, a) for a in args]
        assert not [a for a in args if a.isupper()], f"an id the walkthrough never printed: {line}"
        answers = {"login": "carol\na-carol-password\n", "participate": "y\n"}.get(args[0])
        out = outputs[" ".join(args[:2])] = run(*args, input=answers)
        if args[:2] == ["challenges", "list"]:
            assert re.search(rf"│ {challenge.pk}\s+│ {re.escape(challenge.title)}", out)
        elif args[:2] == ["challenges", "show"]:
            assert re.search(rf"│ {board.pk}\s+│ dev\s+│ public", out)
        elif args[:2] == ["teams", "create"]:
            ids["TEAM"] = re.search(r"created team 'My team' \(id (\d+)\)", out).group(1)
        elif args[0] == "submit":
            ids["SUBMISSION"] = re.search(r"as submission (\d+)", out).group(1)
    thread.join(timeout=120)

    assert "Username" in outputs["login --server"] and "logged in" in outputs["login --server"]
    assert "Terms and conditions" in outputs[f"participate {challenge.pk}"]
    assert (
        "submission " + ids["SUBMISSION"] + ": finished" in outputs["submit examples/demo-submissions/dev_perfect.json"]
    )
    result = outputs["result " + ids["SUBMISSION"]]
    assert result.endswith("}\n") and json.loads(result)["public"]["Accuracy"] == 1.0
    assert "My team (yours)" in outputs["leaderboard " + ids["LEADERBOARD"]]


def test_install_commands_name_the_repository_not_an_index():
    """Assay is not on PyPI: an install command by its name (``pip install assay``, ``'assay[extra]'``) would
    fetch something else. The docs and the messages install from the checkout (``pip install '.[extra]'``);
    the one mention left is the README's warning."""
    import re

    by_name = re.compile(r"pip install -?-?\w* ?['\"]?assay(?:\\*\[[\w,]+\])?(?![\\\[\w])(?! @ git\+)")
    warning = "(`pip install assay` does not install this project)"
    files = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "src" / "assay").rglob("*.py")]
    found = [
        f"{path.relative_to(REPO)}: {m.group(0)}"
        for path in files
        for m in by_name.finditer(path.read_text(encoding="utf-8").replace(warning, ""))
    ]
    assert found == []
    assert warning in (REPO / "README.md").read_text(encoding="utf-8")
