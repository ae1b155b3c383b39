"""Public team pages: display names, visible challenges, public leaderboard rows only — and linked from boards."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from assay.server.challenges.models import Challenge
from assay.server.leaderboards.services.team_page import display_name, team_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(world):
    world.result("A", 0.70, 0.6)  # dev phase, public split
    world.result("A", 0.95, 0.9, public=False)  # private: better, must never show
    world.result("A", 0.60, 0.5, phase="test", private={"Accuracy": 0.99, "F1": 0.99})  # hosts-only split
    world.result("B", 0.80, 0.7)
    world.result("C", 0.70, 0.7)
    user = world.users["A"]
    user.first_name, user.last_name = "Ada", "Lovelace"
    user.save()
    return world


def test_what_anyone_reads(board):
    page = team_page(AnonymousUser(), board.teams["A"])
    assert page.members == ["Ada Lovelace"]
    assert [c.pk for c in page.challenges] == [board.challenge.pk]
    rows = page.entries[board.challenge.pk]
    shown = {(e.phase_split.phase.codename, e.phase_split.dataset_split.codename): e for e in rows}
    assert set(shown) == {("dev", "public"), ("test", "public")}  # the hosts-only split never
    dev = shown[("dev", "public")]
    assert dev.value == "0.700" and dev.rank == 2 and dev.teams == 3  # the public entry, not the private 0.95


def test_hidden_challenge_and_display_names(board, django_user_model):
    Challenge.objects.filter(pk=board.challenge.pk).update(published=False)
    assert team_page(AnonymousUser(), board.teams["A"]).challenges == []
    host_view = team_page(board.host, board.teams["A"])  # the host still sees the challenge: only public rows
    assert [c.pk for c in host_view.challenges] == [board.challenge.pk]
    assert board.challenge.pk not in host_view.entries  # unlisted: no public leaderboard
    mail_like = django_user_model(username="carol@uni.example")
    assert display_name(mail_like) == "carol"


def test_page_for_strangers_members_and_from_the_leaderboard(board):
    team = board.teams["A"]
    stranger = Client()
    html = stranger.get(f"/teams/{team.pk}/").content.decode()
    assert "Ada Lovelace" in html and "A@team.example" not in html and "Invite someone" not in html
    assert "0.700" in html and "0.950" not in html and "0.990" not in html
    member = Client()
    member.force_login(board.users["A"])
    html = member.get(f"/teams/{team.pk}/").content.decode()
    assert "Invite someone" in html and "What others see" in html
    assert stranger.post(f"/teams/{team.pk}/", {"email": "x@y.example"}).status_code == 302  # to sign in
    leaderboard = stranger.get(f"/challenges/{board.challenge.pk}/leaderboard").content.decode()
    assert f'href="/teams/{team.pk}/"' in leaderboard
    assert stranger.get("/teams/999999/").status_code == 404
