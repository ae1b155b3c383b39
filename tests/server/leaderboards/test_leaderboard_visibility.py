"""Who sees what: every visibility level read by an anonymous visitor, a signed-in stranger, another
team, the owning team, a host and an admin — through the HTTP API, as each of them would."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import World

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.results(
        ("A", 0.9, 0.5),  # the owning team
        ("A", 0.95, 0.5, {"public": False}),  # its better, private submission
        ("B", 0.5, 0.5),  # another team
    ),
]


def client_for(world: World, reader: str, django_user_model) -> APIClient:
    client = APIClient()
    user = {
        "anonymous": None,
        "stranger": lambda: django_user_model.objects.create_user("stranger", "s@x.example", "pw"),
        "other team": lambda: world.users["B"],
        "owning team": lambda: world.users["A"],
        "host": lambda: world.host,
        "admin": lambda: django_user_model.objects.create_superuser("root", "root@x.example", "pw"),
    }[reader]
    if user is not None:
        client.force_authenticate(user())
    return client


def rows_of(response) -> list[tuple]:
    return [(r["rank"], r["team"]["name"], r["scores"]["Accuracy"]) for r in response.json()["results"]]


PUBLIC = [(1, "A", 0.9), (2, "B", 0.5)]
EVERYTHING = [(1, "A", 0.95), (2, "B", 0.5)]  # a hidden split's hosts see private submissions too
DENIED = 403  # 401 to the anonymous: signed in as a host, they would see it


def denied(reader: str) -> int:
    return 401 if reader == "anonymous" else 403


# (visibility, reader) → HTTP status, or the rows the reader gets
VISIBILITY = [
    (3, "anonymous", PUBLIC),
    (3, "stranger", PUBLIC),
    (3, "other team", PUBLIC),
    (3, "owning team", PUBLIC),
    (3, "host", PUBLIC),
    (3, "admin", PUBLIC),
    (2, "anonymous", DENIED),
    (2, "stranger", DENIED),
    (2, "other team", [(None, "B", 0.5)]),
    (2, "owning team", [(None, "A", 0.95)]),
    (2, "host", EVERYTHING),
    (2, "admin", EVERYTHING),
    (1, "anonymous", DENIED),
    (1, "stranger", DENIED),
    (1, "other team", DENIED),
    (1, "owning team", DENIED),
    (1, "host", EVERYTHING),
    (1, "admin", EVERYTHING),
]


def _check(response, expected, what: str) -> None:
    if expected == DENIED:
        assert response.status_code == denied(what.split(",")[0]), what
        return
    assert response.status_code == 200, (what, response.json())
    assert rows_of(response) == expected, what


@pytest.mark.parametrize("visibility", [3, 2, 1])
def test_every_visibility_for_every_reader(world, django_user_model, visibility):
    ps = world.ps()
    ps.visibility = visibility
    ps.save()
    for level, reader, expected in VISIBILITY:
        if level != visibility:
            continue
        client = client_for(world, reader, django_user_model)
        response = client.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard")
        _check(response, expected, reader)
        export = client.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.json")
        history = client.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/history")
        if expected == DENIED:
            assert response.json()["error"]["code"] == "leaderboard_not_public"
            assert export.status_code == history.status_code == denied(reader), reader
            continue
        own = {"owning team": "A", "other team": "B"}.get(reader)
        assert [r["team"]["name"] for r in response.json()["results"] if r["is_own"]] == ([own] if own else [])
        exported = json.loads(b"".join(export.streaming_content))["results"]
        assert [r["team"]["name"] for r in exported] == [name for _, name, _ in expected], reader
        assert history.status_code == 200, reader


def test_reveal_at_makes_a_hidden_split_public_on_its_date(world, django_user_model):
    ps = world.ps()
    ps.visibility = 1
    for hours, reader, expected in [
        (1, "anonymous", DENIED), (1, "owning team", DENIED), (1, "host", EVERYTHING),
        (-1, "anonymous", PUBLIC), (-1, "owning team", PUBLIC), (-1, "host", PUBLIC),
    ]:  # fmt: skip
        ps.reveal_at = timezone.now() + dt.timedelta(hours=hours)
        ps.save()
        response = client_for(world, reader, django_user_model).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard")
        _check(response, expected, f"{reader}, reveal in {hours} h")
        if expected == PUBLIC:
            assert response.json()["phase_split"]["visibility"] == 3


@pytest.mark.parametrize("visibility", [3, 2, 1])
def test_leaderboard_public_false_leaves_the_split_visibility_alone(world, django_user_model, visibility):
    """EvalAI decides by the phase-split's visibility alone; ``leaderboard_public`` only sets the default
    public flag of new submissions, so every reader sees what they would with it on — on Assay's API
    and on EvalAI's leaderboard endpoint (whose refusal is its own 400)."""
    ps = world.ps()
    ps.phase.leaderboard_public = False
    ps.phase.save()
    ps.visibility = visibility
    ps.save()
    for level, reader, expected in VISIBILITY:
        if level != visibility:
            continue
        client = client_for(world, reader, django_user_model)
        _check(client.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard"), expected, reader)
        evalai = client.get(f"/api/jobs/challenge_phase_split/{ps.pk}/leaderboard/")
        if expected == PUBLIC:
            assert evalai.status_code == 200, reader
            names = [r["submission__participant_team__team_name"] for r in evalai.json()["results"]]
            assert names == [name for _, name, _ in PUBLIC], reader
        elif reader in ("anonymous", "stranger"):
            assert evalai.status_code == 400 and evalai.json()["error"] == "Sorry, the leaderboard is not public!"
    ps.visibility = 1
    ps.reveal_at = timezone.now() - dt.timedelta(hours=1)  # and a reveal opens it like any other
    ps.save()
    _check(client_for(world, "anonymous", django_user_model).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard"),
           PUBLIC, "anonymous after reveal_at")  # fmt: skip


@pytest.mark.parametrize("hide", ["phase_not_public", "challenge_unpublished", "challenge_disabled"])
def test_hidden_phase_or_challenge_does_not_exist_for_participants(world, django_user_model, hide):
    ps = world.ps()
    if hide == "phase_not_public":
        ps.phase.is_public = False
        ps.phase.save()
    else:
        field = "published" if hide == "challenge_unpublished" else "is_disabled"
        setattr(world.challenge, field, field == "is_disabled")
        world.challenge.save()
    for reader in ("anonymous", "owning team", "host"):
        response = client_for(world, reader, django_user_model).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard")
        assert response.status_code == (200 if reader == "host" else 404), reader


def test_only_hosts_may_ask_for_every_entry(world, django_user_model):
    ps = world.ps()
    url = f"/api/v1/phase-splits/{ps.pk}/leaderboard?entries=all"
    assert client_for(world, "owning team", django_user_model).get(url).status_code == 403
    assert rows_of(client_for(world, "host", django_user_model).get(url)) == EVERYTHING


def test_challenge_lists_the_leaderboards_a_reader_may_open(world, django_user_model):
    url = f"/api/v1/challenges/{world.challenge.pk}/leaderboards"
    anonymous = client_for(world, "anonymous", django_user_model).get(url).json()["leaderboards"]
    assert [(x["phase"], x["split"]) for x in anonymous] == [("dev", "public"), ("test", "public")]
    hosts = client_for(world, "host", django_user_model).get(url).json()["leaderboards"]
    assert [(x["phase"], x["split"], x["level"]) for x in hosts][-1] == ("test", "private", "host")
    world.challenge.published = False
    world.challenge.save()
    assert client_for(world, "anonymous", django_user_model).get(url).status_code == 404


def test_visibility_two_history_shows_only_the_own_line(world, django_user_model):
    ps = world.ps()
    ps.visibility = 2
    ps.save()
    data = client_for(world, "owning team", django_user_model).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/history")
    assert data.status_code == 200
    body = data.json()
    assert body["top"] is None and [line["team"]["name"] for line in body["teams"]] == ["A"]
    assert [p["value"] for p in body["teams"][0]["points"]] == [0.9, 0.95]
