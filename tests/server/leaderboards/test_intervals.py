"""Leaderboard intervals (issue 14): ``set_intervals`` refuses bad input whole, stores good input on the
submission's current entries, and a cached leaderboard page shows the new interval at once."""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from assay.server.challenges.services.read_versions import board
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.leaderboards.services.exports import leaderboard_table
from assay.server.leaderboards.services.intervals import IntervalError, set_intervals, tied_with_leader
from assay.server.read_cache import versions

pytestmark = [pytest.mark.django_db, pytest.mark.results(("A", 0.9, 0.5), ("B", 0.85, 0.5))]


def entry(world, team: str) -> LeaderboardEntry:
    return LeaderboardEntry.objects.get(participant_team=world.teams[team], is_disabled=False)


def sub(world, team: str):
    return world.teams[team].submissions.get()


@pytest.mark.parametrize(
    ("by_split", "problem"),
    [
        ({"public": {"Accuracy": [0.9, 0.8]}}, "low above high"),
        ({"public": {"Accuracy": [0.1, math.inf]}}, "finite"),
        ({"public": {"Accuracy": [math.nan, 0.5]}}, "finite"),
        ({"public": {"Accuracy": [0.1]}}, "[low, high]"),
        ({"public": {"Accuracy": [0.1, 0.2, 0.3]}}, "[low, high]"),
        ({"public": {"Accuracy": ["0.1", "0.2"]}}, "two numbers"),
        ({"public": {"Accuracy": [True, 1]}}, "two numbers"),
        ({"public": {"Accuracy": 0.5}}, "[low, high]"),
        ({"public": {"Loss": [0.1, 0.2]}}, "unknown label 'Loss'"),
        ({"nowhere": {"Accuracy": [0.1, 0.2]}}, "unknown split 'nowhere'"),
        ({"public": [0.1, 0.2]}, "must map labels"),
        ([["public", {}]], "must map split codenames"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(world, by_split, problem):
    with pytest.raises(IntervalError) as refused:
        set_intervals(sub(world, "A"), by_split)
    assert problem in refused.value.message and refused.value.status == 400 and refused.value.code == "bad_intervals"
    assert entry(world, "A").intervals == {}


def test_one_bad_interval_refuses_all_of_them(world):
    with pytest.raises(IntervalError):
        set_intervals(sub(world, "A"), {"public": {"F1": [0.4, 0.6], "Accuracy": [0.9, 0.1]}})
    assert entry(world, "A").intervals == {}


def test_a_hostile_mapping_gets_a_short_answer(world):
    with pytest.raises(IntervalError) as refused:
        set_intervals(sub(world, "A"), {f"split{i}": {} for i in range(10_000)})
    assert len(refused.value.problems) == 20


def test_intervals_are_stored_and_merged_per_label(world):
    assert set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.85, 0.95]}}) == 1
    assert entry(world, "A").intervals == {"Accuracy": [0.85, 0.95]}
    assert set_intervals(sub(world, "A"), {"public": {"F1": [0, 1]}}) == 1
    assert entry(world, "A").intervals == {"Accuracy": [0.85, 0.95], "F1": [0.0, 1.0]}
    assert set_intervals(sub(world, "A"), {"public": {"F1": [0, 1]}}) == 0  # unchanged: no write
    assert set_intervals(sub(world, "A"), {}) == 0
    assert entry(world, "B").intervals == {}


def test_disabled_entries_keep_their_intervals(world):
    old = entry(world, "A")
    LeaderboardEntry.objects.filter(pk=old.pk).update(is_disabled=True)
    assert set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.8, 0.95]}}) == 0
    old.refresh_from_db()
    assert old.intervals == {}


def test_the_write_makes_cached_pages_stale(world):
    tokens = versions(board(world.challenge.pk))
    set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.85, 0.95]}})
    assert versions(board(world.challenge.pk)) != tokens


@pytest.mark.parametrize(
    ("interval", "leader", "is_leader", "expected"),
    [
        ((0.80, 0.88), (0.85, 0.95), False, True),  # overlap
        ((0.80, 0.85), (0.85, 0.95), False, True),  # touching ends count as overlap
        ((0.70, 0.80), (0.85, 0.95), False, False),  # apart
        (None, (0.85, 0.95), False, None),  # no interval on this entry
        ((0.80, 0.88), None, False, None),  # the leader has none (or there is no leader)
        ((0.85, 0.95), (0.85, 0.95), True, None),  # the leader itself
    ],
)
def test_tied_with_leader(interval, leader, is_leader, expected):
    assert tied_with_leader(interval, leader, is_leader=is_leader) is expected


def test_a_scripts_intervals_are_written_with_its_entries(team, participant):
    """The worker's report carries ``intervals``; the entries written from the result hold them."""
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from tests.factories import finish, upload

    phase = team.participations.get().challenge.phases.get(codename="dev")
    submission = submit(participant, phase, upload(b"{}", "p.json"), "p.json", SubmissionFields(is_public=True))
    output = {
        "result": [{"public": {"Accuracy": 0.77, "F1": 0.6}}],
        "intervals": [{"public": {"Accuracy": [0.71, 0.83]}}, {"public": {"F1": [0.4, 0.6]}}],
    }
    done = finish(submission, output)
    assert done.status == "finished", done.failure_reason
    stored = {e.phase_split.dataset_split.codename: e.intervals for e in submission.leaderboard_entries.all()}
    assert stored == {"public": {"Accuracy": [0.71, 0.83], "F1": [0.4, 0.6]}}


def test_a_script_with_a_bad_interval_fails_its_submission(team, participant):
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from tests.factories import finish, upload

    phase = team.participations.get().challenge.phases.get(codename="dev")
    submission = submit(participant, phase, upload(b"{}", "p.json"), "p.json", SubmissionFields())
    output = {
        "result": [{"public": {"Accuracy": 0.77, "F1": 0.6}}],
        "intervals": [{"public": {"Accuracy": [0.83, 0.71]}}],
    }
    done = finish(submission, output)
    assert done.status == "failed" and "low 0.83 above high 0.71" in done.failure_reason
    assert not submission.leaderboard_entries.exists()


def ties(world, **kw) -> list[tuple]:
    return [(r["team"]["name"], r["intervals"], r["tied_with_leader"]) for r in world.board(**kw).rows]


def test_rows_carry_intervals_and_ties_with_the_leader(world):
    world.result("C", 0.5, 0.5)
    set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.85, 0.95], "F1": [0.4, 0.6]}})
    set_intervals(sub(world, "B"), {"public": {"Accuracy": [0.8, 0.9]}})
    set_intervals(world.teams["C"].submissions.get(), {"public": {"Accuracy": [0.4, 0.6]}})
    assert ties(world) == [
        ("A", {"Accuracy": [0.85, 0.95], "F1": [0.4, 0.6]}, None),  # the leader itself
        ("B", {"Accuracy": [0.8, 0.9]}, True),  # overlaps
        ("C", {"Accuracy": [0.4, 0.6]}, False),  # apart
    ]
    # sorted by F1 (all 0.5: A leads, the earliest), only A has an F1 interval: nobody else can be tied
    assert [t[2] for t in ties(world, order_by="F1")] == [None, None, None]
    # a later page finds the leader with its own query
    assert [(t[0], t[2]) for t in ties(world, page=2, page_size=1)] == [("B", True)]


def test_no_tie_without_the_leaders_interval(world):
    set_intervals(sub(world, "B"), {"public": {"Accuracy": [0.8, 0.95]}})
    assert ties(world) == [("A", {}, None), ("B", {"Accuracy": [0.8, 0.95]}, None)]


@pytest.mark.results(("A", None, 0.5), ("B", None, 0.5))
def test_no_tie_when_the_leader_has_no_value(world):
    """Every row lacks the sort label: there is no leader to be tied with."""
    set_intervals(sub(world, "A"), {"public": {"F1": [0.4, 0.6]}})
    set_intervals(sub(world, "B"), {"public": {"F1": [0.4, 0.6]}})
    assert [t[2] for t in ties(world)] == [None, None]
    assert [t[2] for t in ties(world, order_by="F1")] == [None, True]


def test_hidden_scores_hide_intervals_and_ties(world):
    set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.85, 0.95]}})
    ps = world.ps()
    ps.show_scores_on_leaderboard = False
    ps.save()
    row = world.board().rows[0]
    assert "intervals" not in row and "tied_with_leader" not in row
    assert world.board(world.host).rows[0]["intervals"] == {"Accuracy": [0.85, 0.95]}


# every face shows them: the web page, /api/v1 (and its schema), the CSV export
def _two_intervals(world) -> None:
    set_intervals(sub(world, "A"), {"public": {"Accuracy": [0.85, 0.95]}})
    set_intervals(sub(world, "B"), {"public": {"Accuracy": [0.8, 0.9]}})


def test_the_web_page_shows_intervals_and_the_tied_mark(world):
    ps = world.ps()
    url = f"/challenges/{world.challenge.pk}/leaderboard"
    assert "intervals-legend" not in Client().get(url, {"split": ps.pk}).content.decode()  # none yet: no legend
    _two_intervals(world)
    page = Client().get(url, {"split": ps.pk}).content.decode()
    table = page[page.index('id="leaderboard"') : page.index("</table>", page.index('id="leaderboard"'))]
    row_a, row_b = table.split("<tr")[2:4]  # the header row, then A's and B's
    assert '<span class="ci" title="confidence interval">[0.850–0.950]</span>' in row_a and "tied" not in row_a
    assert "[0.800–0.900]" in row_b
    assert 'title="Statistically tied with the leader: the confidence intervals on Accuracy overlap"' in row_b
    assert 'id="intervals-legend"' in page and "statistically tied with the leader" in page


def test_the_api_rows_carry_intervals_and_ties(world):
    _two_intervals(world)
    body = APIClient().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard").json()
    assert [(r["team"]["name"], r["intervals"], r["tied_with_leader"]) for r in body["results"]] == [
        ("A", {"Accuracy": [0.85, 0.95]}, None),
        ("B", {"Accuracy": [0.8, 0.9]}, True),
    ]
    evalai = APIClient().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard?shape=evalai").json()["results"]
    assert "intervals" not in evalai[0]  # EvalAI's shape stays EvalAI's


def test_the_schema_documents_intervals_and_ties():

    schema = yaml.safe_load(Client().get("/api/v1/schema").content)
    operation = schema["paths"]["/api/v1/phase-splits/{phase_split_id}/leaderboard"]["get"]
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    row = schema["components"]["schemas"][page]["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][row]["properties"]
    assert fields["tied_with_leader"]["type"] == "boolean" and fields["tied_with_leader"]["nullable"] is True
    assert fields["intervals"]["additionalProperties"]["items"]["type"] == "number"


def test_the_csv_export_has_low_and_high_columns(world):
    world.result("=cmd", 0.5, 0.5)
    _two_intervals(world)
    response = APIClient().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard/export.csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = table[0]
    assert header[8:13] == ["Accuracy low", "Accuracy high", "F1 low", "F1 high", "tied_with_leader"]
    picked = [(r[1], r[8], r[9], r[10], r[12]) for r in table[1:]]
    assert picked == [("A", "0.85", "0.95", "", ""), ("B", "0.8", "0.9", "", "yes"), ("'=cmd", "", "", "", "")]


def test_csv_header_cells_from_labels_are_formula_safe(world):
    board = world.board(everything=True)
    board.rules = dataclasses.replace(board.rules, labels=("=HYPERLINK()",))
    assert "'=HYPERLINK() low" in next(leaderboard_table(board))


def test_assay_leaderboard_shows_intervals_and_ties(world, monkeypatch):
    """``assay leaderboard`` prints what /api/v1 answers: here the answer is read in-process."""
    from rich.console import Console
    from typer.testing import CliRunner

    from assay.cli import client_participant
    from assay.cli.main import app

    _two_intervals(world)
    body = APIClient().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard").json()

    class Answering:
        def get(self, path: str, **params):
            assert path == f"/phase-splits/{world.ps().pk}/leaderboard"
            return body

    monkeypatch.setattr(client_participant, "client", lambda server, need_token=False: Answering())
    # A wide table, whatever COLUMNS was when the CLI's console was made (it may be set in xdist's workers)
    monkeypatch.setattr(client_participant, "console", Console(width=200, highlight=False))
    result = CliRunner().invoke(app, ["leaderboard", str(world.ps().pk)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row_a = next(line for line in lines if " A " in line)
    row_b = next(line for line in lines if " B " in line)
    assert "0.900 [0.850–0.950]" in row_a and "(tied)" not in row_a
    assert "0.850 [0.800–0.900] (tied)" in row_b
    assert "statistically tied with the leader on Accuracy" in result.output
