"""Teams and e-mail invitations: nobody joins without accepting, and accepting re-checks every rule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assay.server.challenges.models import Participation
from assay.server.teams import services as teams
from assay.server.teams.models import HostTeamMember, ParticipantTeamMember, TeamInvitation
from assay.server.teams.services import TeamError
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_user("alice", "alice@uni.example")


@pytest.fixture
def bob():
    return make_user("bob", "bob@lab.example")


@pytest.fixture
def team(alice):
    return teams.create_participant_team(alice, "Team Alice")


# --- creating teams ----------------------------------------------------------------------------------


def test_creator_is_the_only_member(team, alice):
    assert list(teams.active_members(team)) == [alice]
    assert teams.is_member(alice, team)


@pytest.mark.parametrize(
    "name, code",
    [("", "name_required"), ("   ", "name_required"), ("x" * 101, "name_too_long"), ("a\x00b", "bad_name")],
)
def test_bad_team_names_are_refused(alice, name, code):
    with pytest.raises(TeamError) as exc:
        teams.create_participant_team(alice, name)
    assert exc.value.code == code


def test_team_names_are_unique_without_case(team, bob):
    with pytest.raises(TeamError) as exc:
        teams.create_participant_team(bob, "team ALICE")
    assert exc.value.code == "name_taken"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x.example", "not a url"])
def test_team_url_must_be_http(alice, url):
    with pytest.raises(TeamError) as exc:
        teams.create_participant_team(alice, "T", team_url=url)
    assert exc.value.code == "bad_url"


def test_anonymous_cannot_create_a_team():
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(TeamError) as exc:
        teams.create_participant_team(AnonymousUser(), "T")
    assert exc.value.status == 401


def test_host_team_names_are_unique(alice, bob):
    teams.create_host_team("Hosts", alice)
    with pytest.raises(TeamError):
        teams.create_host_team("hosts", bob)


# --- inviting ----------------------------------------------------------------------------------------


def test_an_invitation_adds_nobody_until_accepted(team, alice, bob):
    invitation, token = teams.invite(alice, team, "Bob@Lab.example")
    assert invitation.email == "bob@lab.example" and invitation.status == "pending"
    assert not teams.is_member(bob, team)
    assert teams.invitation_by_token(token) == invitation
    assert list(teams.pending_invitations_for(bob)) == [invitation]
    teams.accept_invitation(bob, invitation)
    assert teams.is_member(bob, team)
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.accepted_by == bob
    assert list(teams.pending_invitations_for(bob)) == []


def test_only_members_invite(team, bob):
    with pytest.raises(TeamError) as exc:
        teams.invite(bob, team, "carol@x.example")
    assert exc.value.status == 403


@pytest.mark.parametrize("email", ["", "not-an-email", "a@", "@b.example", "a b@c.example", "x" * 250 + "@e.org"])
def test_bad_addresses_are_refused(team, alice, email):
    with pytest.raises(TeamError) as exc:
        teams.invite(alice, team, email)
    assert exc.value.code == "bad_email"


def test_inviting_a_member_is_refused(team, alice):
    with pytest.raises(TeamError) as exc:
        teams.invite(alice, team, "ALICE@uni.example")
    assert exc.value.code == "already_member"


def test_inviting_again_replaces_the_pending_invitation(team, alice):
    first, token1 = teams.invite(alice, team, "bob@lab.example")
    second, token2 = teams.invite(alice, team, "bob@lab.example")
    first.refresh_from_db()
    assert first.status == "revoked" and second.status == "pending" and token1 != token2
    assert teams.invitation_by_token(token1).status == "revoked"


def test_the_token_is_stored_hashed(team, alice):
    invitation, token = teams.invite(alice, team, "bob@lab.example")
    assert token not in invitation.token_hash and len(invitation.token_hash) == 64


@pytest.mark.parametrize("token", ["", "x", "a" * 101, "' OR 1=1 --"])
def test_unknown_tokens_find_nothing(token):
    assert teams.invitation_by_token(token) is None


def test_only_the_invited_verified_address_may_answer(team, alice, bob):
    invitation, _ = teams.invite(alice, team, "bob@lab.example")
    eve = make_user("eve", "eve@evil.example")
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(eve, invitation)
    assert exc.value.code == "wrong_account"
    with pytest.raises(TeamError):
        teams.decline_invitation(eve, invitation)


def test_an_unverified_address_cannot_accept(team, alice):
    carol = make_user("carol", "carol@x.example", verified=False)
    invitation, _ = teams.invite(alice, team, "carol@x.example")
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(carol, invitation)
    assert exc.value.code == "wrong_account"


def test_expired_and_answered_invitations_cannot_be_used(team, alice, bob):
    invitation, _ = teams.invite(alice, team, "bob@lab.example")
    TeamInvitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert exc.value.code == "invitation_expired"
    invitation, _ = teams.invite(alice, team, "bob@lab.example")
    teams.decline_invitation(bob, invitation)
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert exc.value.code == "invitation_closed"
    assert not teams.is_member(bob, team)


def test_revoking(team, alice, bob):
    invitation, _ = teams.invite(alice, team, "bob@lab.example")
    with pytest.raises(TeamError):
        teams.revoke_invitation(bob, invitation)
    teams.revoke_invitation(alice, invitation)
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert exc.value.code == "invitation_closed"


def test_open_invitations_are_capped(team, alice, monkeypatch):
    monkeypatch.setattr(teams, "MAX_PENDING_INVITATIONS", 2)
    teams.invite(alice, team, "a@x.example")
    teams.invite(alice, team, "b@x.example")
    with pytest.raises(TeamError) as exc:
        teams.invite(alice, team, "c@x.example")
    assert exc.value.code == "too_many_invitations"


def test_host_team_invitations(alice, bob):
    hosts = teams.create_host_team("Hosts", alice)
    invitation, _ = teams.invite(alice, hosts, "bob@lab.example")
    assert invitation.is_host_team
    teams.accept_invitation(bob, invitation)
    assert HostTeamMember.objects.filter(team=hosts, user=bob).exists()


def test_invitation_email_holds_the_link(team, alice, mailoutbox):
    invitation, token = teams.invite(alice, team, "bob@lab.example")
    teams.send_invitation(invitation, f"https://assay.example/invitations/{token}")
    assert mailoutbox[0].to == ["bob@lab.example"]
    assert f"/invitations/{token}" in mailoutbox[0].body and "Team Alice" in mailoutbox[0].subject


# --- the challenge rules apply when joining ----------------------------------------------------------


@pytest.fixture
def registered(team, demo_challenge):
    return Participation.objects.create(challenge=demo_challenge, team=team, terms_accepted_at=timezone.now())


def test_joining_is_refused_when_already_in_the_challenge_through_another_team(registered, alice, bob, demo_challenge):
    other = teams.create_participant_team(bob, "Team Bob")
    Participation.objects.create(challenge=demo_challenge, team=other, terms_accepted_at=timezone.now())
    invitation, _ = teams.invite(alice, registered.team, "bob@lab.example")
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert exc.value.code == "not_eligible" and "Team Bob" in exc.value.message
    assert not teams.is_member(bob, registered.team)


def test_joining_is_refused_beyond_max_team_members(registered, alice, bob, demo_challenge):
    demo_challenge.max_team_members = 1
    demo_challenge.save()
    invitation, _ = teams.invite(alice, registered.team, "bob@lab.example")
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert "at most 1" in exc.value.message


def test_a_banned_address_cannot_even_be_invited(registered, alice, demo_challenge):
    demo_challenge.banned_email_ids = ["Mallory@Evil.example"]
    demo_challenge.save()
    with pytest.raises(TeamError) as exc:
        teams.invite(alice, registered.team, "mallory@evil.example")
    assert exc.value.code == "email_not_eligible"


def test_a_blocked_domain_cannot_be_invited(registered, alice, demo_challenge):
    demo_challenge.blocked_email_domains = ["evil.example"]
    demo_challenge.save()
    with pytest.raises(TeamError):
        teams.invite(alice, registered.team, "x@sub.evil.example")


def test_invite_only_challenges_need_the_joiner_invited(registered, alice, bob, demo_challenge):
    from assay.server.challenges.services.participation import invite_emails

    demo_challenge.invite_only = True
    demo_challenge.save()
    invitation, _ = teams.invite(alice, registered.team, "bob@lab.example")
    with pytest.raises(TeamError) as exc:
        teams.accept_invitation(bob, invitation)
    assert "invite-only" in exc.value.message
    invite_emails(demo_challenge.host_team.created_by, demo_challenge, ["bob@lab.example"])
    teams.accept_invitation(bob, invitation)
    assert teams.is_member(bob, registered.team)


# --- leaving and removing ----------------------------------------------------------------------------


def test_members_leave_and_the_creator_removes(team, alice, bob):
    invitation, _ = teams.invite(alice, team, "bob@lab.example")
    teams.accept_invitation(bob, invitation)
    with pytest.raises(TeamError):
        teams.remove_member(bob, team, alice)  # not the creator
    teams.remove_member(alice, team, bob)
    assert not teams.is_member(bob, team)
    with pytest.raises(TeamError) as exc:
        teams.remove_member(alice, team, bob)
    assert exc.value.code == "not_member"
    # outsiders cannot act at all
    with pytest.raises(TeamError):
        teams.remove_member(bob, team, alice)


def test_the_last_member_stays_while_the_team_takes_part(registered, alice):
    with pytest.raises(TeamError) as exc:
        teams.remove_member(alice, registered.team, alice)
    assert exc.value.code == "last_member"
    assert ParticipantTeamMember.objects.filter(team=registered.team).count() == 1


def test_host_teams_keep_one_member(alice, bob):
    hosts = teams.create_host_team("Hosts", alice)
    with pytest.raises(TeamError) as exc:
        teams.remove_host_member(alice, hosts, alice)
    assert exc.value.code == "last_member"
    with pytest.raises(TeamError):
        teams.remove_host_member(bob, hosts, alice)
