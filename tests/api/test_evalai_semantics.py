"""EvalAI's semantics on its own paths: participating with a team registered without the terms,
``get_auth_token`` answering the same token, and the web addresses its CLI prints."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import client_for, token_for

pytestmark = pytest.mark.django_db


def _participate(client: APIClient, challenge, team):
    return client.post(f"/api/challenges/challenge/{challenge.pk}/participant_team/{team.pk}", format="json")


def test_participate_accepts_the_terms_of_a_team_registered_without_them(world, users):
    """The demo (and a host) register teams without the terms; ``evalai … participate`` then accepts
    them, and the submission that ``terms_not_accepted`` refused before goes through."""
    from assay.server.challenges.models import Participation

    challenge, team = world["challenge"], world["teams"]["participant"]
    Participation.objects.filter(challenge=challenge, team=team).update(terms_accepted_at=None)
    alice = client_for(users["participant"])
    dev = challenge.phases.get(codename="dev")
    url = f"/api/jobs/challenge/{challenge.pk}/challenge_phase/{dev.pk}/submission/"
    refused = alice.post(url, {"input_file": _file()}, format="multipart")
    assert refused.status_code == 403 and refused.json()["code"] == "terms_not_accepted"

    # someone outside the team cannot accept for it: not one of their teams (EvalAI's 406 for "does not exist")
    stranger = _participate(client_for(users["other_participant"]), challenge, team)
    assert stranger.status_code == 406 and stranger.json()["error"] == "ParticipantTeam does not exist"

    response = _participate(alice, challenge, team)
    assert response.status_code == 201, response.json()
    assert response.json()["success"] == f"team Team Alice accepted the terms and takes part in {challenge.title}"
    p = Participation.objects.get(challenge=challenge, team=team)
    assert p.terms_accepted_at is not None and p.terms_accepted_by == users["participant"]
    assert Participation.objects.filter(challenge=challenge, team=team).count() == 1
    assert alice.post(url, {"input_file": _file()}, format="multipart").status_code == 201

    again = _participate(alice, challenge, team)
    assert again.status_code == 403 and "already registered" in again.json()["error"]


def test_native_participate_applies_the_same_rule(world, users):
    from assay.server.challenges.models import Participation

    challenge, team = world["challenge"], world["teams"]["participant"]
    Participation.objects.filter(challenge=challenge, team=team).update(terms_accepted_at=None)
    alice = client_for(users["participant"])
    url = f"/api/v1/challenges/{challenge.pk}/participation"
    refused = alice.post(url, {"team": team.pk, "accept_terms": False}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "terms_not_accepted"
    accepted = alice.post(url, {"team": team.pk, "accept_terms": True}, format="json")
    assert accepted.status_code == 200 and accepted.json()["participation"]["terms_accepted_at"]


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("sub.json", b'{"dev-a0": 1}', content_type="application/json")


def test_get_auth_token_answers_the_same_token_until_it_is_revoked(users):
    from assay.server.accounts.models import ApiToken

    alice = users["participant"]

    def get_auth_token(token: str) -> str:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.get("/api/accounts/user/get_auth_token")
        assert response.status_code == 200, response.json()
        return response.json()["token"]

    first = get_auth_token(token_for(alice))
    second = get_auth_token(token_for(alice))
    assert first == second and first.startswith("ap_")
    assert get_auth_token(first) == first  # asking with the CLI token itself
    rows = ApiToken.objects.filter(user=alice, name="evalai CLI")
    assert rows.count() == 1 and rows.get().token_hash != first  # still only its hash is stored
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {first}").get("/api/participants/participant_team").status_code == 200

    # another user gets another token; a revoked one is replaced, never handed out again
    assert get_auth_token(token_for(users["other_participant"])) != first
    from django.utils import timezone

    rows.update(revoked_at=timezone.now())
    third = get_auth_token(token_for(alice))
    assert third != first
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {first}").get("/api/participants/participant_team").status_code == 401
    assert get_auth_token(token_for(alice)) == third


def test_evalai_login_then_get_auth_token_revokes_only_the_login_token(users):
    client = APIClient()
    login = client.post("/api/auth/login", {"username": "alice", "password": "pw"}, format="json")
    assert login.status_code == 200
    short = login.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {short}")
    long = client.get("/api/accounts/user/get_auth_token").json()["token"]
    assert client.get("/api/participants/participant_team").status_code == 401  # the login token is spent
    client.credentials(HTTP_AUTHORIZATION=f"Token {long}")
    assert client.get("/api/participants/participant_team").status_code == 200
    relogin = APIClient().post("/api/auth/login", {"username": "alice", "password": "pw"}, format="json")
    again = APIClient(HTTP_AUTHORIZATION=f"Token {relogin.json()['token']}").get("/api/accounts/user/get_auth_token")
    assert again.json()["token"] == long


@pytest.mark.parametrize(
    "tab, page",
    [
        ("evaluation", "terms"),
        ("overview", ""),
        ("", ""),
        ("phases", "phases"),
        ("participate", "participate"),
        ("submission", "submit"),
        ("my-submission", "submissions"),
        ("my-submission/7", "submissions"),
        ("leaderboard", "leaderboard"),
        ("leaderboard/12", "leaderboard?split=12"),
        ("manage", "host/"),
        ("some-future-tab", ""),
    ],
)
def test_evalai_challenge_page_addresses_redirect_to_assay_pages(world, client, tab, page):
    """evalai CLI prints ``/web/challenges/challenge-page/<c>/evaluation`` for the terms (its
    ``URLS.terms_and_conditions_page``); every tab of that page lands on Assay's own page."""
    c = world["challenge"].pk
    path = f"/web/challenges/challenge-page/{c}" + (f"/{tab}" if tab else "")
    response = client.get(path)
    assert response.status_code == 302, path
    assert response["Location"] == f"/challenges/{c}/{page}"
    assert client.get(path + "/").status_code == 302


def test_the_terms_address_the_cli_prints_opens_the_terms(world, client):
    c = world["challenge"]
    response = client.get(f"/web/challenges/challenge-page/{c.pk}/evaluation", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/challenges/{c.pk}/terms", 302)]
    assert "terms" in response.content.decode().lower()
    assert client.get("/web/challenges/challenge-page/notanumber/evaluation").status_code == 404


def test_split_list_follows_the_leaderboard_rule(world, users):
    """``evalai challenge C phase P splits`` lists what the leaderboard endpoint opens: visibility 3 (the
    phase's ``leaderboard_public`` plays no part) and a hidden split once its ``reveal_at`` has passed."""
    import datetime as dt

    from django.utils import timezone

    from assay.server.challenges.models import ChallengePhaseSplit

    challenge = world["challenge"]
    challenge.phases.update(leaderboard_public=False)
    url = f"/api/challenges/{challenge.pk}/challenge_phase_split"
    hidden = ChallengePhaseSplit.objects.get(phase__challenge=challenge, visibility=1)
    public = set(
        ChallengePhaseSplit.objects.filter(phase__challenge=challenge, visibility=3).values_list("pk", flat=True)
    )
    alice = client_for(users["participant"])
    assert {row["id"] for row in alice.get(url).json()} == public
    assert {row["id"] for row in APIClient().get(url).json()} == public
    hidden.reveal_at = timezone.now() - dt.timedelta(minutes=1)
    hidden.save()
    assert {row["id"] for row in alice.get(url).json()} == public | {hidden.pk}
    leaderboard = alice.get(f"/api/jobs/challenge_phase_split/{hidden.pk}/leaderboard/")
    assert leaderboard.status_code == 200
