"""Cached leaderboard pages and challenge lists (assay.server.read_cache): a repeated read is served from
the cache, every kind of write that changes what a response shows makes the next read fresh, and no
audience ever reads an entry made for another."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache.backends import db as db_cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit, Participation
from assay.server.challenges.services import phase_rules
from assay.server.challenges.services.list_cache import seconds_to_next_date
from assay.server.challenges.services.read_versions import challenge_updated
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.leaderboards.services import standings
from assay.server.submissions.services import lifecycle
from assay.server.teams.models import HostTeamMember, ParticipantTeam, ParticipantTeamMember
from tests.factories import World

pytestmark = [pytest.mark.django_db, pytest.mark.results(("A", 0.9, 0.5), ("B", 0.5, 0.5))]
V = ChallengePhaseSplit.Visibility


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def board_url(world: World) -> str:
    return f"/api/v1/phase-splits/{world.ps().pk}/leaderboard"


def rows(response) -> list[tuple]:
    assert response.status_code == 200, response.content
    return [(r["rank"], r["team"]["name"], r["scores"]["Accuracy"], r["is_own"]) for r in response.json()["results"]]


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["title"] for c in response.json()["results"]]


def served_from_cache(client: APIClient, url: str) -> bytes:
    """Read ``url`` twice; the second read must touch nothing but the cache table."""
    first = client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        again = client.get(url)
    app_queries = [q["sql"] for q in ctx.captured_queries if "assay_cache" not in q["sql"]]
    assert app_queries == [], app_queries
    assert again.content == first.content
    return again.content


def test_a_repeated_read_is_served_from_the_cache(world, django_user_model):
    member = api(world.users["A"])
    for client in (api(), member, api(world.host)):
        served_from_cache(client, board_url(world))
        served_from_cache(client, "/api/v1/challenges")


# every kind of write that changes a leaderboard page, and what the next anonymous read must show
def _scored(world):
    world.result("C", 0.7, 0.5)
    return [(1, "A", 0.9, False), (2, "C", 0.7, False), (3, "B", 0.5, False)]


def _hidden(world):
    lifecycle.hide(world.users["A"], world.teams["A"].submissions.get())
    return [(1, "B", 0.5, False)]


def _private(world):
    lifecycle.set_public(world.host, world.teams["A"].submissions.get(), False)
    return [(1, "B", 0.5, False)]


def _baseline(world):
    lifecycle.mark(world.host, world.teams["B"].submissions.get(), baseline=True)
    return [(1, "A", 0.9, False), (None, "B", 0.5, False)]


def _flagged(world):
    lifecycle.mark(world.host, world.teams["A"].submissions.get(), flagged=True)
    return [(1, "B", 0.5, False)]


def _team_renamed(world):
    team = ParticipantTeam.objects.get(name="B")
    team.name = "Bee"
    team.save()
    return [(1, "A", 0.9, False), (2, "Bee", 0.5, False)]


def _banned(world):
    world.challenge.banned_email_ids = ["A@team.example"]
    world.challenge.save()
    return [(1, "B", 0.5, False)]


WRITES = [_scored, _hidden, _private, _baseline, _flagged, _team_renamed, _banned]


@pytest.mark.parametrize("write", WRITES, ids=[w.__name__.strip("_") for w in WRITES])
def test_each_write_makes_the_next_read_fresh(world, write):
    url = board_url(world)
    served_from_cache(api(), url)
    expected = write(world)
    assert rows(api().get(url)) == expected


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param(lambda w: _set(w.ps(), visibility=V.HOST), 401, id="split-hidden"),
        pytest.param(lambda w: _set(w.challenge.phases.get(codename="dev"), is_public=False), 404, id="phase-private"),
        pytest.param(lambda w: _set(w.challenge, approved_by_admin=False), 404, id="challenge-unapproved"),
        pytest.param(lambda w: _set(w.challenge, published=False), 404, id="challenge-unpublished"),
    ],
)
def test_hiding_a_leaderboard_refuses_the_next_anonymous_read(world, change, status):
    url = board_url(world)
    served_from_cache(api(), url)
    change(world)
    assert api().get(url).status_code == status


def _set(obj, **fields) -> None:
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save()


def test_a_new_precision_shows_at_once(world):
    url = board_url(world)
    served_from_cache(api(), url)
    _set(world.ps(), leaderboard_decimal_precision=1)
    assert [r["display"]["Accuracy"] for r in api().get(url).json()["results"]] == ["0.9", "0.5"]


def test_scores_hidden_from_participants_after_the_host_turns_them_off(world):
    url = board_url(world)
    served_from_cache(api(), url)
    _set(world.ps(), show_scores_on_leaderboard=False)
    assert "scores" not in api().get(url).json()["results"][0]
    assert "scores" in api(world.host).get(url).json()["results"][0]


def test_a_team_registering_sees_its_rows_marked_at_once(world, django_user_model):
    newcomer = django_user_model.objects.create_user("newcomer", "n@x.example", "pw")
    url = board_url(world)
    served_from_cache(api(newcomer), url)
    ParticipantTeamMember.objects.create(team=world.teams["B"], user=newcomer)
    assert rows(api(newcomer).get(url)) == [(1, "A", 0.9, False), (2, "B", 0.5, True)]


def test_audiences_never_share_an_entry(world, django_user_model):
    """Visibility 2: each team sees only its own row, hosts see all, others are refused — read in an
    order where each reader follows one whose entry it must not get."""
    _set(world.ps(), visibility=V.OWNER_AND_HOST)
    url = board_url(world)
    admin = django_user_model.objects.create_superuser("root", "root@x.example", "pw")
    stranger = django_user_model.objects.create_user("stranger", "s@x.example", "pw")
    for _ in range(2):  # the second round reads what the first one cached
        assert rows(api(world.host).get(url)) == [(1, "A", 0.9, False), (2, "B", 0.5, False)]
        assert rows(api(world.users["A"]).get(url)) == [(None, "A", 0.9, True)]
        assert rows(api(world.users["B"]).get(url)) == [(None, "B", 0.5, True)]
        assert rows(api(admin).get(url)) == [(1, "A", 0.9, False), (2, "B", 0.5, False)]
        assert api(stranger).get(url).status_code == 403
        assert api().get(url).status_code == 401
    _set(world.ps(), visibility=V.PUBLIC)
    for _ in range(2):
        assert rows(api(world.users["A"]).get(url)) == [(1, "A", 0.9, True), (2, "B", 0.5, False)]
        assert rows(api(stranger).get(url)) == [(1, "A", 0.9, False), (2, "B", 0.5, False)]
        assert rows(api().get(url)) == [(1, "A", 0.9, False), (2, "B", 0.5, False)]
        assert api().get(url).json()["viewer"] == {"level": "public", "team": None}
        assert api(admin).get(url).json()["viewer"] == {"level": "host", "team": None}


def test_host_only_entries_are_not_read_by_participants(world):
    url = board_url(world) + "?entries=all"
    assert api(world.host).get(url).status_code == 200
    assert api(world.users["A"]).get(url).status_code == 403
    assert api().get(url).status_code == 403


def test_challenge_list_per_audience_and_after_each_write(world, django_user_model):
    challenge = world.challenge
    admin = django_user_model.objects.create_superuser("root", "root@x.example", "pw")
    outsider = django_user_model.objects.create_user("out", "o@x.example", "pw")
    served_from_cache(api(), "/api/v1/challenges")
    _set(challenge, published=False)  # only its hosts and staff see it now
    for _ in range(2):
        assert titles(api(world.host).get("/api/v1/challenges")) == [challenge.title]
        assert titles(api(admin).get("/api/v1/challenges")) == [challenge.title]
        assert titles(api().get("/api/v1/challenges")) == []
        assert titles(api(outsider).get("/api/v1/challenges")) == []
    HostTeamMember.objects.create(team=challenge.host_team, user=outsider)  # joins the host team
    assert titles(api(outsider).get("/api/v1/challenges")) == [challenge.title]
    _set(challenge, published=True, title="Renamed")
    assert titles(api().get("/api/v1/challenges")) == ["Renamed"]
    _set(challenge, end_date=timezone.now() - dt.timedelta(days=1))  # dates
    assert titles(api().get("/api/v1/challenges?status=ongoing")) == []
    assert titles(api().get("/api/v1/challenges?status=past")) == ["Renamed"]
    mine = api(world.users["A"])
    assert titles(mine.get("/api/v1/challenges?role=participant")) == ["Renamed"]
    Participation.objects.filter(team=world.teams["A"]).delete()  # deletes one by one: signals
    assert titles(mine.get("/api/v1/challenges?role=participant")) == []


def test_a_list_entry_lives_until_the_next_date(world, settings):
    now = timezone.now()
    _set(world.challenge, start_date=now - dt.timedelta(days=1), end_date=now + dt.timedelta(seconds=90))
    assert 89 <= seconds_to_next_date(now) <= 90
    settings.READ_CACHE_SECONDS = 30
    assert seconds_to_next_date(now) == 30


def test_a_queryset_update_announced_by_challenge_updated_makes_every_cache_fresh(world):
    """The writes that use ``update()`` (pause, the EvalAI repository link, the demo's approval) send no
    signal; challenge_updated must do what a save's receivers do for the list, the boards and the rules."""
    challenge, phase = world.challenge, world.challenge.phases.get(codename="dev")
    served_from_cache(api(), "/api/v1/challenges")
    served_from_cache(api(), board_url(world))
    assert not phase_rules.phase_with_challenge(phase.pk).challenge.is_submission_paused
    Challenge.objects.filter(pk=challenge.pk).update(title="Renamed", is_submission_paused=True)
    ChallengePhase.objects.filter(pk=phase.pk).update(is_public=False)
    challenge_updated(challenge.pk)
    assert titles(api().get("/api/v1/challenges")) == ["Renamed"]
    assert api().get(board_url(world)).status_code == 404
    assert phase_rules.phase_with_challenge(phase.pk).challenge.is_submission_paused


def test_an_overall_column_shows_once_a_split_it_draws_on_reveals_without_a_write(world, monkeypatch):
    """The column needs the phase's private split, hidden until its reveal date: a page cached before that
    date must not hide the column after it (no write announces a date passing)."""
    world.result("A", 0.9, 0.1, phase="test", private={"Accuracy": 0.5, "F1": 0.5})
    board = world.ps("test", "public").leaderboard
    board.schema = {**board.schema, "rank_aggregation": {"method": "mean_rank", "splits": ["public", "private"]}}
    board.save()
    now = timezone.now()
    _set(world.ps("test", "private"), reveal_at=now + dt.timedelta(seconds=60))
    url = f"/api/v1/phase-splits/{world.ps('test', 'public').pk}/leaderboard"
    assert served_from_cache(api(), url) and api().get(url).json()["overall"]["shown"] is False
    later = now + dt.timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    monkeypatch.setattr(db_cache, "tz_now", lambda: later)  # the database cache's clock, for the entry's expiry
    assert api().get(url).json()["overall"]["shown"] is True


def test_a_rebuild_of_the_standings_shows_at_once(world):
    """The admin's rebuild (after entries were edited or loaded behind the services' back) rewrites the
    standings without a signal: the pages cached before it must not outlive it."""
    url = board_url(world)
    served_from_cache(api(), url)
    entries = LeaderboardEntry.objects.filter(phase_split=world.ps(), participant_team=world.teams["B"])
    entries.update(result={"Accuracy": 0.95, "F1": 0.5})  # a bulk load: no signal, the standings are behind
    standings.rebuild(world.ps())
    assert rows(api().get(url)) == [(1, "B", 0.95, False), (2, "A", 0.9, False)]


def test_a_deleted_challenge_leaves_the_list_and_its_pages_at_once(world):
    url = board_url(world)
    served_from_cache(api(), url)
    served_from_cache(api(), "/api/v1/challenges")
    for sub in world.challenge.phases.get(codename="dev").submissions.all():  # a phase keeps its submissions
        sub.delete()
    served_from_cache(api(), url)
    world.challenge.delete()
    assert api().get(url).status_code == 404
    assert titles(api().get("/api/v1/challenges")) == []


def test_a_version_bump_is_one_statement_and_commits_or_rolls_back_with_the_write():
    """On the database cache the new token is written inside the writer's transaction: a rolled-back
    write leaves the old token (nothing changed), a committed one the new; one statement either way."""
    from django.db import transaction

    from assay.server.read_cache import bump, versions

    (before,) = versions("probe")
    with pytest.raises(RuntimeError), transaction.atomic():
        with CaptureQueriesContext(connection) as ctx:
            bump("probe")
        assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]
        assert versions("probe") != (before,)  # the writer's own reads see it
        raise RuntimeError("rolled back")
    assert versions("probe") == (before,)
    with transaction.atomic():
        bump("probe")
    (after,) = versions("probe")
    assert after != before


def test_store_writes_what_the_cache_reads_back_with_its_timeout(settings):
    from django.core.cache import cache

    from assay.server.read_cache import store

    store({"k1": [1.5, 2.5], "k2": {"a": "b"}}, 60)
    store({"k1": [3.0]}, 60)  # an existing key is replaced
    store({"gone": 1}, -1)  # already expired: never read
    assert cache.get_many(["k1", "k2", "gone"]) == {"k1": [3.0], "k2": {"a": "b"}}
    store({"forever": "x"}, None)
    assert cache.get("forever") == "x"


def test_a_body_is_stored_in_one_statement_and_a_full_table_is_still_culled(monkeypatch):
    """A page built after a result is written by one upsert; one write in CULL_EVERY goes through Django's
    set(), which counts the table and culls it past MAX_ENTRIES, so the table stays bounded."""
    import itertools

    from django.core.cache import cache, caches

    from assay.server import read_cache

    backend = caches["default"]
    monkeypatch.setattr(read_cache, "_writes", itertools.count(1))  # not the culling write
    with CaptureQueriesContext(connection) as ctx:
        assert read_cache.cached_body(read_cache.PREFIX + "b:probe", lambda: b"page") == b"page"
    assert len(ctx.captured_queries) == 2, [q["sql"] for q in ctx.captured_queries]  # the read, the upsert
    assert cache.get(read_cache.PREFIX + "b:probe") == b"page"
    monkeypatch.setattr(backend, "_max_entries", 10)
    monkeypatch.setattr(backend, "_cull_frequency", 2)  # a cull deletes half the rows
    monkeypatch.setattr(read_cache, "_writes", itertools.count(0))
    for i in range(3 * read_cache.CULL_EVERY):
        read_cache.cached_body(read_cache.PREFIX + f"b:{i}", lambda: b"page")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {backend._table}")
        (rows,) = cursor.fetchone()
    # halved at every culling write past 10 rows: at most ~1.8 x CULL_EVERY left; never culled, 3 x CULL_EVERY
    assert rows < 2 * read_cache.CULL_EVERY
