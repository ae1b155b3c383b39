"""The ranking rules, one row of the table per rule: what a leaderboard shows, in which order, with which rank.

Results are written as the queue writes them (entries, then ``refresh_submission`` in the same
transaction), so the standings under test are the ones production keeps.
"""

from __future__ import annotations

import pytest

from assay.server.leaderboards.models import Standing, StandingsState
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.rules import label_ascending
from assay.server.leaderboards.services.standings import rebuild
from assay.server.submissions.models import Submission

pytestmark = pytest.mark.django_db


def table(board, label: str = "Accuracy") -> list[tuple]:
    """(rank, team, value of ``label``) per row, the compact form the table below expects."""
    return [(r["rank"], r["team"]["name"], r.get("scores", {}).get(label)) for r in board.rows]


def _set(obj, **fields) -> None:
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save()


# Each case: settings to apply, results to write (team, accuracy, f1, options), what to ask, the rows expected.
CASES = [
    pytest.param(
        {}, [("A", 0.5, 0.1), ("A", 0.9, 0.2), ("B", 0.7, 0.9)], {},
        [(1, "A", 0.9), (2, "B", 0.7)], id="best-entry-per-team-higher-first",
    ),
    pytest.param(
        {}, [("A", 0.9, 0.1), ("B", 0.9, 0.2), ("C", 0.8, 0.3)], {},
        [(1, "A", 0.9), (1, "B", 0.9), (3, "C", 0.8)], id="ties-share-a-rank-1-1-3",
    ),
    pytest.param(
        {}, [("A", 0.9, 0.1), ("A", 0.5, 0.8), ("B", 0.7, 0.5)], {"order_by": "F1"},
        [(1, "A", 0.5), (2, "B", 0.7)], id="order-by-another-label-picks-that-labels-best",
    ),
    pytest.param(
        {"meta": {"Accuracy": {"description": "x"}}},
        [("A", 0.2, 0), ("B", 0.1, 0)], {},
        [(1, "A", 0.2), (2, "B", 0.1)], id="metadata-without-sort_ascending-keeps-split-order-not-evalai-quirk",
    ),
    pytest.param(
        {"ps": {"is_leaderboard_order_descending": False}, "meta": {"Accuracy": {}}},
        [("A", 0.2, 0), ("B", 0.1, 0)], {},
        [(1, "B", 0.1), (2, "A", 0.2)], id="split-ascending-lower-first",
    ),
    pytest.param(
        {"meta": {"Accuracy": {"sort_ascending": True}}}, [("A", 0.2, 0), ("B", 0.1, 0), ("B", 0.3, 0)], {},
        [(1, "B", 0.1), (2, "A", 0.2)], id="label-sort_ascending-overrides-split",
    ),
    pytest.param(
        {"ps": {"show_leaderboard_by_latest_submission": True}},
        [("A", 0.9, 0), ("A", 0.4, 0), ("B", 0.6, 0)], {},
        [(1, "B", 0.6), (2, "A", 0.4)], id="latest-submission-per-team-ranked-by-score",
    ),
    pytest.param(
        {}, [("A", 0.6, 0), ("H", 0.95, 0, {"baseline": True}), ("A", 0.7, 0, {"baseline": True}), ("B", 0.5, 0)],
        {}, [(None, "H", 0.95), (None, "A", 0.7), (1, "A", 0.6), (2, "B", 0.5)],
        id="baselines-shown-unranked-and-not-taking-the-slot",
    ),
    pytest.param(
        {}, [("A", 0.9, 0, {"flagged": True}), ("A", 0.5, 0), ("B", 0.8, 0, {"hidden": True}), ("C", 0.1, 0)],
        {}, [(1, "A", 0.5), (2, "C", 0.1)], id="flagged-and-hidden-left-out",
    ),
    pytest.param(
        {"banned": ["B@TEAM.example"]}, [("A", 0.5, 0), ("B", 0.9, 0)], {},
        [(1, "A", 0.5)], id="banned-team-left-out-case-insensitive",
    ),
    pytest.param(
        {}, [("A", 0.5, 0), ("H", 0.9, 0, {"by_host": True}), ("G", 0.8, 0, {"by_host": True, "baseline": True})],
        {}, [(None, "G", 0.8), (1, "A", 0.5)], id="host-entries-left-out-of-a-public-phase-unless-baseline",
    ),
    pytest.param(
        {"phase": {"is_public": False}}, [("A", 0.5, 0), ("H", 0.9, 0, {"by_host": True})], {"user": "host"},
        [(1, "H", 0.9), (2, "A", 0.5)], id="host-entries-kept-in-a-non-public-phase",
    ),
    pytest.param(
        {}, [("A", 0.9, 0, {"status": "failed"}), ("A", 0.3, 0), ("B", 0.8, 0, {"status": "running"}),
             ("C", 0.7, 0, {"status": "partially_evaluated"}), ("D", 0.6, 0, {"status": "cancelled"})],
        {}, [(1, "A", 0.3)], id="only-finished-submissions",
    ),
    pytest.param(
        {"phase": {"is_partial_submission_evaluation_enabled": True}},
        [("A", 0.3, 0), ("C", 0.7, None, {"status": "partially_evaluated"}), ("D", None, 0.5, {})],
        {}, [(1, "C", 0.7), (2, "A", 0.3), (3, "D", None)], id="partial-counts-when-enabled-missing-ranks-last",
    ),
    pytest.param(
        {"meta": {"Accuracy": {"sort_ascending": True}}}, [("A", None, 0.5), ("B", 0.9, 0), ("C", None, 0.1)],
        {}, [(1, "B", 0.9), (2, "A", None), (2, "C", None)], id="missing-value-last-even-ascending-not-evalai-zero",
    ),
    pytest.param(
        {}, [("A", 0.9, 0, {"public": False}), ("A", 0.4, 0), ("B", 0.6, 0, {"public": False})], {},
        [(1, "A", 0.4)], id="participant-private-submissions-off-the-public-view",
    ),
    pytest.param(
        {}, [("A", 0.9, 0, {"public": False}), ("A", 0.4, 0), ("B", 0.6, 0, {"public": False})],
        {"user": "host", "entries": "all"}, [(1, "A", 0.9), (2, "B", 0.6)], id="hosts-see-every-entry-on-request",
    ),
    pytest.param(
        {}, [("A", 0.7, 0, {"errors": {"public": {"error_Accuracy": 0.2}}}),
             ("B", 0.7, 0, {"errors": {"public": {"error_Accuracy": 0.1}}})],
        {}, [(1, "B", 0.7), (1, "A", 0.7)], id="ties-listed-by-smaller-error-bar",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("settings_", "results", "ask", "expected"), CASES)
def test_ranking_rules(world, settings_, results, ask, expected):
    ps = world.ps()
    if "ps" in settings_:
        _set(ps, **settings_["ps"])
    if "phase" in settings_:
        _set(ps.phase, **settings_["phase"])
    if "meta" in settings_:
        ps.leaderboard.schema["metadata"] = settings_["meta"]
        ps.leaderboard.save()
    if "banned" in settings_:
        _set(world.challenge, banned_email_ids=settings_["banned"])
    world.results(results)
    ask = dict(ask)
    user = world.host if ask.pop("user", None) == "host" else None
    assert table(world.board(user, **ask)) == expected


def test_sort_direction_follows_the_readers_documented_meaning():
    class PS:
        is_leaderboard_order_descending = True

    assert label_ascending({}, PS(), "x") is False
    assert label_ascending({"metadata": {"x": {"description": "d"}}}, PS(), "x") is False  # EvalAI: True
    assert label_ascending({"metadata": {"x": {"sort_ascending": True}}}, PS(), "x") is True
    PS.is_leaderboard_order_descending = False
    assert label_ascending({"metadata": {"x": {"sort_ascending": False}}}, PS(), "x") is False
    assert label_ascending({}, PS(), "x") is True


def test_row_carries_errors_display_precision_and_execution_time(world):
    world.result("A", 0.87654, 0.5, errors={"public": {"error_Accuracy": 0.0123}}, seconds=42)
    row = world.board().rows[0]
    assert row["scores"] == {"Accuracy": 0.87654, "F1": 0.5}
    assert row["errors"] == {"Accuracy": 0.0123, "F1": None}
    assert row["display"] == {"Accuracy": "0.877", "F1": "0.500"}  # dev's precision is 3
    assert row["execution_time"] == 42.0  # dev shows execution time
    world.result("B", 0.5, 0.5, phase="test")
    assert "execution_time" not in world.board(phase="test").rows[0]


def test_missing_label_shows_as_missing(world):
    _set(world.ps().phase, is_partial_submission_evaluation_enabled=True)
    world.result("A", 0.5, None, status="partially_evaluated")
    row = world.board().rows[0]
    assert row["scores"]["F1"] is None and row["display"]["F1"] == "—"


def test_hidden_scores_keep_ranks_and_teams(world, participant):
    _set(world.ps(), show_scores_on_leaderboard=False)
    world.result("A", 0.5, 0.5)
    world.result("B", 0.9, 0.5)
    rows = world.board().rows
    assert [(r["rank"], r["team"]["name"]) for r in rows] == [(1, "B"), (2, "A")]
    assert all("scores" not in r and "errors" not in r and "display" not in r for r in rows)
    assert "scores" in world.board(world.host).rows[0]  # hosts keep the numbers


def test_pages_rank_ties_across_the_page_boundary(world):
    for i, value in enumerate([0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6]):
        world.result(f"T{i}", value, 0)
    whole = [r["rank"] for r in world.board(page_size=50).rows]
    assert whole == [1, 2, 2, 2, 5, 6, 6]
    paged = []
    for page in (1, 2, 3, 4):
        board = world.board(page=page, page_size=2)
        assert board.count == 7 and board.pages == 4
        paged += [r["rank"] for r in board.rows]
    assert paged == whole


def test_baselines_in_pages_do_not_shift_ranks(world):
    world.result("A", 0.9, 0)
    world.result("H", 0.85, 0, baseline=True)
    world.result("B", 0.8, 0)
    world.result("C", 0.8, 0)
    assert [r["rank"] for r in world.board(page=2, page_size=2).rows] == [2, 2]


def test_order_by_must_be_a_sortable_label(world):
    with pytest.raises(LeaderboardError) as err:
        world.board(order_by="Nope")
    assert err.value.code == "bad_order_by" and err.value.status == 400
    _set(world.ps(), is_multi_metric_leaderboard=False)
    with pytest.raises(LeaderboardError):
        world.board(order_by="F1")
    with pytest.raises(LeaderboardError):
        world.board(order_by="_overall")  # no rank aggregation configured


def test_own_block_shows_where_a_private_submission_would_rank(world):
    world.result("A", 0.4, 0)
    world.result("A", 0.95, 0, public=False)
    world.result("B", 0.9, 0)
    world.result("C", 0.5, 0)
    board = world.board(world.users["A"])
    assert table(board) == [(1, "B", 0.9), (2, "C", 0.5), (3, "A", 0.4)]
    assert [r["is_own"] for r in board.rows] == [False, False, True]
    (own,) = board.own
    assert own["rank"] == 1 and own["scores"]["Accuracy"] == 0.95 and own["submission"]["is_public"] is False


def test_lifecycle_changes_update_the_standings(world, participant):
    from assay.server.submissions.services import lifecycle

    best = world.result("A", 0.9, 0)
    world.result("A", 0.6, 0)
    world.result("B", 0.7, 0)
    assert table(world.board())[0] == (1, "A", 0.9)
    lifecycle.mark(world.host, best, flagged=True)
    assert table(world.board()) == [(1, "B", 0.7), (2, "A", 0.6)]
    lifecycle.mark(world.host, best, flagged=False)
    assert table(world.board())[0] == (1, "A", 0.9)
    lifecycle.set_public(world.host, best, False)  # dev keeps submissions public: only a host may unpublish
    assert table(world.board())[1] == (2, "A", 0.6)
    lifecycle.set_public(world.host, best, True)
    lifecycle.hide(world.users["A"], best)
    assert table(world.board())[1] == (2, "A", 0.6)
    lifecycle.mark(world.host, Submission.objects.get(pk=best.pk), baseline=True)
    assert (None, "A", 0.9) not in table(world.board())  # hidden stays hidden, baseline or not


def test_rerun_cancels_the_old_result_off_the_board(world):
    from assay.server.submissions.services import lifecycle

    sub = world.result("A", 0.9, 0)
    world.result("B", 0.5, 0)
    lifecycle.rerun(world.host, sub)
    assert table(world.board()) == [(1, "B", 0.5)]


def test_select_one_publishing_shows_only_the_chosen_submission(world):
    from assay.server.submissions.services import lifecycle

    _set(world.ps().phase, is_restricted_to_select_one_submission=True, is_submission_public=False)
    first = world.result("A", 0.9, 0)
    second = world.result("A", 0.5, 0, public=False)
    lifecycle.set_public(world.users["A"], second, True)
    assert table(world.board()) == [(1, "A", 0.5)]
    lifecycle.set_public(world.users["A"], first, True)
    assert table(world.board()) == [(1, "A", 0.9)]


def test_admin_edit_outside_the_services_is_repaired_when_read(world):
    sub = world.result("A", 0.9, 0)
    world.result("A", 0.3, 0)
    world.result("B", 0.5, 0)
    Submission.objects.filter(pk=sub.pk).update(is_flagged=True)  # as the Django admin would
    assert table(world.board()) == [(1, "B", 0.5), (2, "A", 0.3)]  # never shown; A's next entry takes its place
    assert not Standing.objects.filter(submission=sub).exists()


def test_settings_change_rebuilds_the_standings_on_next_read(world):
    world.result("A", 0.9, 0)
    world.result("B", 0.5, 0)
    before = StandingsState.objects.get(phase_split=world.ps()).signature
    _set(world.ps(), is_leaderboard_order_descending=False)
    lb = world.ps().leaderboard
    lb.schema = {**lb.schema, "metadata": {}}
    lb.save()
    assert table(world.board()) == [(1, "B", 0.5), (2, "A", 0.9)]
    assert StandingsState.objects.get(phase_split=world.ps()).signature != before


def test_host_membership_change_rebuilds(world, django_user_model):
    from assay.server.teams.models import HostTeamMember

    world.result("A", 0.5, 0)
    newcomer = world.users["A"]
    HostTeamMember.objects.create(team=world.challenge.host_team, user=newcomer)
    assert table(world.board()) == []  # A's member now hosts: its entries leave the public phase's board


def test_rebuild_equals_incremental_upkeep(world):
    for team, acc, f1, opts in [
        ("A", 0.5, 0.2, {}), ("A", 0.8, 0.1, {"public": False}), ("B", 0.7, 0.7, {}),
        ("H", 0.6, 0.6, {"baseline": True}), ("C", None, 0.4, {}), ("B", 0.7, 0.9, {}),
    ]:  # fmt: skip
        world.result(team, acc, f1, **opts)
    ps = world.ps()
    fields = ("label", "audience", "team_id", "entry_id", "is_baseline", "sort_key", "tie_key")
    incremental = sorted(Standing.objects.filter(phase_split=ps).values_list(*fields))
    rebuild(ps)
    assert sorted(Standing.objects.filter(phase_split=ps).values_list(*fields)) == incremental
    assert len(incremental) == 2 * 2 * 4  # labels x audiences x (3 teams + 1 baseline); C private none


def test_results_written_by_the_queue_reach_the_board(world, admin_user, team, participant):
    from assay.server.submissions.services.queue import Completion, claim_next, complete
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.submissions.services.tokens import create_worker_token
    from tests.factories import upload

    phase = world.challenge.phases.get(codename="dev")
    submit(participant, phase, upload(), "p.json", SubmissionFields())
    token, _ = create_worker_token(admin_user, "w")
    job = claim_next(token, "w1")
    output = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}
    complete(token, job.pk, Completion(attempt=job.attempt, output=output))
    assert table(world.board()) == [(1, "Team Alice", 0.75)]
