"""The queries a leaderboard page runs, compiled once (``assay.server.prepared``), must read what the ORM reads.

``load_phase_split`` (the phase-split, its select_related rows and the standings hints), a board's first
page and its counts are SQL built once per database; each is compared here with the queryset it stands
for, on boards with ties, baselines, missing values and both audiences.
"""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.leaderboards.models import Standing
from assay.server.leaderboards.services import ranking
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.rules import HEAVY_FIELDS, with_standings_hints
from assay.server.leaderboards.services.standings import ensure_current
from assay.server.teams.models import HostTeamMember

pytestmark = pytest.mark.django_db

RESULTS = [
    ("A", 0.9, 0.1),
    ("B", 0.9, 0.3, {"errors": {"public": {"error_Accuracy": 0.01}}}),  # tied on Accuracy, larger error bar
    ("C", 0.7, None),  # no F1: last when sorted by it
    ("D", 0.95, 0.5, {"baseline": True}),
    ("E", 0.4, 0.2, {"public": False}),  # private: on the hosts' audience only
    ("F", 0.9, 0.8),
    ("A", 0.2, 0.9),
]


def orm_split(pk: int) -> ChallengePhaseSplit:
    related = ChallengePhaseSplit.objects.select_related("phase__challenge__host_team", "leaderboard", "dataset_split")
    return with_standings_hints(related.filter(pk=pk).defer(*HEAVY_FIELDS)).get()


def _what_ranking_reads(split) -> tuple:
    return (
        split.phase.challenge.host_team.pk,
        split.phase.challenge.title,
        split.leaderboard.schema,
        split.dataset_split.codename,
        split.host_user_ids,
        split.standings_signature,
    )


def test_load_phase_split_reads_what_the_queryset_reads_in_one_query(world, host):
    world.results(RESULTS)
    assert HostTeamMember.objects.filter(team=world.challenge.host_team).exists()
    ps = world.ps()
    ensure_current(ps)
    expected = orm_split(ps.pk)
    with CaptureQueriesContext(connection) as queries:
        found = ranking.load_phase_split(ps.pk)
        seen = _what_ranking_reads(found)  # everything ranking reads of it comes with it
    assert len(queries.captured_queries) == 1
    assert seen == _what_ranking_reads(expected)
    assert found.host_user_ids and found.standings_signature  # the hints are set, not left to a query
    for model_field in ChallengePhaseSplit._meta.concrete_fields:
        assert getattr(found, model_field.attname) == getattr(expected, model_field.attname), model_field.name
    assert found.get_deferred_fields() == expected.get_deferred_fields()
    assert found.phase.get_deferred_fields() == expected.phase.get_deferred_fields()
    assert ranking.load_phase_split(found).pk == ps.pk  # an instance is read afresh by its id


def test_load_phase_split_with_no_standings_yet_and_no_such_split(world):
    ps = world.ps()
    found = ranking.load_phase_split(ps.pk)
    assert found.standings_signature == orm_split(ps.pk).standings_signature
    for pk in (ps.pk + 10_000, 0, -1, 2**63):
        with pytest.raises(LeaderboardError) as refused:
            ranking.load_phase_split(pk)
        assert refused.value.status == 404


def boards(world):
    ps = world.ps()
    rules = ensure_current(ps)
    for label in rules.labels:
        for public_only in (True, False):
            qs = ranking.visible_standings(rules, label, public_only, [])
            audience = Standing.Audience.PUBLIC if public_only else Standing.Audience.ALL
            where = {"split": ps.pk, "label": label, "audience": int(audience)}
            yield rules, public_only, ranking._Shown(qs, None), ranking._Shown(qs, where)


def test_first_page_and_counts_equal_the_querysets(world):
    world.results(RESULTS)
    checked = 0
    for rules, public_only, by_orm, compiled in boards(world):
        keys = sorted({r["sort_key"] for r in by_orm.first(rules, public_only, 200)})
        assert keys, "every board here has rows"
        for size in (1, 2, 3, 50, 200):
            assert compiled.first(rules, public_only, size) == by_orm.first(rules, public_only, size)
        for key in [*keys, -1.0, 0.0, math.inf, keys[0] - 1e-9, keys[-1] + 1e-9]:
            assert compiled.counts(key) == by_orm.counts(key), key
        checked += 1
    assert checked == 4  # two labels, two audiences


def test_an_empty_board_counts_nothing(world):
    for rules, public_only, by_orm, compiled in boards(world):
        assert compiled.first(rules, public_only, 50) == [] == by_orm.first(rules, public_only, 50)
        assert compiled.counts(0.5) == (0, 0, 0) == by_orm.counts(0.5)


def test_a_page_is_three_statements_and_the_same_with_a_banned_team(world):
    """The anonymous first page: the phase-split, the rows, the counts. With a banned team the ORM's
    querysets run instead (the compiled ones do not leave teams out) and the board is the same but that team."""
    world.results(RESULTS)
    ps = world.ps()
    ranking.leaderboard(None, ps.pk)
    with CaptureQueriesContext(connection) as queries:
        board = ranking.leaderboard(None, ps.pk)
    assert len(queries.captured_queries) == 3, [q["sql"][:80] for q in queries.captured_queries]
    shown = [(r["rank"], r["team"]["name"]) for r in board.rows]
    assert shown == [(None, "D"), (1, "A"), (1, "F"), (1, "B"), (4, "C")]  # ties share a rank; error bars order them
    challenge = ps.phase.challenge
    challenge.banned_email_ids = ["F@team.example"]
    challenge.save()
    board = ranking.leaderboard(None, ps.pk)
    assert [(r["rank"], r["team"]["name"]) for r in board.rows] == [(None, "D"), (1, "A"), (1, "B"), (3, "C")]
    assert board.count == 4


def test_the_page_built_after_a_write_reads_the_phase_split_and_the_reader_once(world, monkeypatch):
    """page_body has just read the phase-split and decided the reader's access to pick the cached page; the
    build's leaderboard() takes both (its access=…) instead of reading them again."""
    import itertools

    from rest_framework.test import APIClient

    from assay.server import read_cache
    from assay.server.challenges.services.read_versions import board

    world.results(RESULTS)
    ps = world.ps()
    url = f"/api/v1/phase-splits/{ps.pk}/leaderboard"
    monkeypatch.setattr(read_cache, "_writes", itertools.count(1))  # no culling write in the count
    member = APIClient()
    member.force_authenticate(world.users["A"])
    for client, expected in ((APIClient(), 7), (member, 10)):
        assert client.get(url).status_code == 200
        read_cache.bump(board(ps.phase.challenge_id))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        # versions, phase-split, [host check, participation,] cached body, next reveal, rows, counts,
        # [own row,] the body stored
        assert len(queries.captured_queries) == expected, [q["sql"][:70] for q in queries.captured_queries]


def test_a_decided_access_is_used_only_for_the_page_it_was_decided_for(world, host):
    """leaderboard(access=…) takes the access page_body decided with the phase-split it loaded; a call without
    one (another reader, other entries) decides afresh."""
    from django.contrib.auth.models import AnonymousUser

    world.results(RESULTS)
    ps = ranking.load_phase_split(world.ps().pk)
    anonymous = AnonymousUser()
    access = ranking.access_for(anonymous, ps)
    assert ranking.leaderboard(anonymous, ps, access=access).access is access
    as_host = ranking.leaderboard(host, ps.pk, entries="all")
    assert as_host.access.is_host and not as_host.access.public_only
    assert [r["team"]["name"] for r in as_host.rows].count("E") == 1  # the private entry, hosts only
    with pytest.raises(LeaderboardError):
        ranking.leaderboard(AnonymousUser(), ps.pk, entries="all")  # another anonymous reader: refused
    with pytest.raises(TypeError):
        ranking.leaderboard(anonymous, ps.pk, access=access)  # an access without the phase-split it was decided for


def test_deeper_pages_and_the_leader_equal_the_querysets(world):
    """A page past the first: the entry ids of the window from an offset (``PreparedSlice``), then those
    rows; the leader read alone when the first page is not in hand. Pages past the end are empty."""
    world.results(RESULTS)
    checked = 0
    for rules, public_only, by_orm, compiled in boards(world):
        everything = by_orm.first(rules, public_only, 200)
        for size in (1, 2, 3, 4):
            for page in range(2, len(everything) // size + 3):
                expected = by_orm.deeper(rules, public_only, page, size)
                assert expected == everything[(page - 1) * size : page * size]
                assert compiled.deeper(rules, public_only, page, size) == expected, (size, page)
        leader = by_orm.leader(rules, public_only)
        assert leader == [r for r in everything if not r["is_baseline"]][:1]
        assert compiled.leader(rules, public_only) == leader
        checked += 1
    assert checked == 4


def test_the_own_row_equals_the_queryset(world):
    """The reader's team's row among all its entries and the public rows ahead of it: compiled once, the
    same rows as the queryset for every team (a baseline's team, a team with a private entry, a tie)."""
    world.results(RESULTS)
    ps = world.ps()
    rules = ensure_current(ps)
    names = (*ranking._ROW_VALUES, "ahead")
    own = ranking._compiled("own")
    checked = 0
    for label in rules.labels:
        for team in world.teams.values():
            expected = list(ranking._own_query(ps.pk, label, team.pk, []).values(*names))
            found = [dict(zip(names, r, strict=True)) for r in own.rows(split=ps.pk, label=label, team=team.pk)]
            assert found == expected, (label, team.name)
            checked += bool(expected)
    assert checked >= 8


def test_deep_pages_and_own_rows_are_the_same_with_a_banned_team_left_out(world):
    """With a banned team the querysets run (the compiled queries leave no team out): the same boards,
    but that team, on every page, for a member's own block too."""
    world.results(RESULTS)
    ps = world.ps()
    member = world.users["C"]
    pages = [ranking.leaderboard(member, ps.pk, page=p, page_size=2) for p in (1, 2, 3)]
    assert [[r["team"]["name"] for r in b.rows] for b in pages] == [["D", "A"], ["F", "B"], ["C"]]
    assert [r["rank"] for r in pages[1].rows] == [1, 1] and pages[2].rows[0]["rank"] == 4
    assert pages[1].own[0]["rank"] == 4 and pages[1].own[0]["team"]["name"] == "C"
    assert pages[1].leader == pages[0].leader  # read alone on page 2, from the first page on page 1
    challenge = ps.phase.challenge
    challenge.banned_email_ids = ["F@team.example"]
    challenge.save()
    pages = [ranking.leaderboard(member, ps.pk, page=p, page_size=2) for p in (1, 2)]
    assert [[(r["rank"], r["team"]["name"]) for r in b.rows] for b in pages] == [
        [(None, "D"), (1, "A")],
        [(1, "B"), (3, "C")],
    ]
    assert pages[1].own[0]["rank"] == 3


def test_a_deep_page_is_four_statements(world):
    """The phase-split, the window's entry ids, its rows, the counts; the leader is a fifth where scores show."""
    world.results(RESULTS)
    ps = world.ps()
    ranking.leaderboard(None, ps.pk, page=2, page_size=2)
    with CaptureQueriesContext(connection) as queries:
        board = ranking.leaderboard(None, ps.pk, page=2, page_size=2)
    assert len(queries.captured_queries) == 5, [q["sql"][:80] for q in queries.captured_queries]
    assert [(r["rank"], r["team"]["name"]) for r in board.rows] == [(1, "F"), (1, "B")]
