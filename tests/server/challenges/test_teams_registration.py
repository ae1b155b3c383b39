"""Registering a team for a challenge: EvalAI's checks (reference/evalai.md §6) for every member, terms
recorded on the server, invite-only challenges, host approval, leaving only without submissions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assay.server.challenges.models import Challenge, Participation
from assay.server.challenges.services import participation as rules
from assay.server.challenges.services.participation import ParticipationError, domain_matches
from assay.server.teams import services as teams
from tests.factories import make_user, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol():
    return make_user("carol", "carol@uni.example")


@pytest.fixture
def dan():
    return make_user("dan", "dan@cs.uni.example")


@pytest.fixture
def crew(carol, dan):
    """Carol's team with Dan in it (he accepted her invitation)."""
    team = teams.create_participant_team(carol, "Crew")
    invitation, _ = teams.invite(carol, team, dan.email)
    teams.accept_invitation(dan, invitation)
    return team


def set_(challenge: Challenge, **fields) -> Challenge:
    Challenge.objects.filter(pk=challenge.pk).update(**fields)
    challenge.refresh_from_db()
    return challenge


@pytest.mark.parametrize(
    "email, domains, expected",
    [
        ("a@example.org", ["example.org"], True),
        ("a@cs.example.org", ["example.org"], True),
        ("a@badexample.org", ["example.org"], False),
        ("a@EXAMPLE.ORG", ["Example.org"], True),
        ("a@example.org", ["@example.org"], True),
        ("a@example.org", [".example.org"], True),
        ("a@example.org.evil", ["example.org"], False),
        ("no-at-sign", ["example.org"], False),
        ("a@example.org", ["", "  "], False),
    ],
)
def test_domain_suffix_match(email, domains, expected):
    assert domain_matches(email, domains) is expected


def test_register_records_the_terms(crew, carol, demo_challenge):
    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    assert participation.status == Participation.Status.APPROVED
    assert participation.terms_accepted_by == carol and participation.terms_accepted_at is not None


def test_terms_must_be_accepted(crew, carol, demo_challenge):
    with pytest.raises(ParticipationError) as exc:
        rules.register(carol, demo_challenge, crew, accept_terms=False)
    assert exc.value.code == "terms_not_accepted"
    assert not Participation.objects.exists()


def test_manual_approval_makes_the_registration_pending(crew, carol, demo_challenge):
    set_(demo_challenge, manual_participant_approval=True)
    assert rules.register(carol, demo_challenge, crew, accept_terms=True).status == Participation.Status.PENDING


def test_registering_twice_is_refused(crew, carol, dan, demo_challenge):
    rules.register(carol, demo_challenge, crew, accept_terms=True)
    with pytest.raises(ParticipationError) as exc:
        rules.register(dan, demo_challenge, crew, accept_terms=True)
    assert "already registered" in exc.value.message


def test_only_members_register_their_team(crew, demo_challenge):
    outsider = make_user("eve", "eve@x.example")
    with pytest.raises(ParticipationError) as exc:
        rules.register(outsider, demo_challenge, crew, accept_terms=True)
    assert exc.value.problems == ["you are not a member of this team"]


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"is_registration_open": False}, "registration is closed"),
        ({"is_disabled": True}, "disabled"),
        ({"banned_email_ids": ["DAN@cs.uni.example"]}, "dan is banned"),
        ({"allowed_email_domains": ["lab.example"]}, "no verified e-mail address at an allowed domain"),
        ({"blocked_email_domains": ["uni.example"]}, "blocked domain"),
        ({"max_team_members": 1}, "at most 1"),
        ({"require_complete_profile": True}, "not completed their profile"),
        ({"invite_only": True}, "not been invited"),
    ],
)
def test_every_rule_is_checked_for_every_member(crew, carol, demo_challenge, fields, fragment):
    set_(demo_challenge, **fields)
    problems = rules.registration_problems(demo_challenge, crew, carol)
    assert any(fragment in p for p in problems), problems
    with pytest.raises(ParticipationError) as exc:
        rules.register(carol, demo_challenge, crew, accept_terms=True)
    assert exc.value.status == 403
    assert not Participation.objects.filter(team=crew).exists()


def test_allowed_domain_suffix_admits_subdomains(crew, carol, demo_challenge):
    set_(demo_challenge, allowed_email_domains=["uni.example"])
    assert rules.registration_problems(demo_challenge, crew, carol) == []


def test_no_registration_before_the_start_or_after_the_end(crew, carol, demo_challenge):
    now = timezone.now()
    set_(demo_challenge, start_date=now + dt.timedelta(days=1), end_date=now + dt.timedelta(days=2))
    assert any("not started" in p for p in rules.registration_problems(demo_challenge, crew, carol))
    set_(demo_challenge, start_date=now - dt.timedelta(days=2), end_date=now - dt.timedelta(days=1))
    assert any("ended" in p for p in rules.registration_problems(demo_challenge, crew, carol))


def test_every_member_needs_a_verified_address(carol, demo_challenge):
    team = teams.create_participant_team(carol, "Solo")
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=carol).update(verified=False)
    assert any("no verified e-mail" in p for p in rules.registration_problems(demo_challenge, team, carol))


def test_one_team_per_user_per_challenge(crew, carol, dan, demo_challenge):
    rules.register(carol, demo_challenge, crew, accept_terms=True)
    other = teams.create_participant_team(dan, "Dan alone")
    with pytest.raises(ParticipationError) as exc:
        rules.register(dan, demo_challenge, other, accept_terms=True)
    assert "already takes part through team 'Crew'" in exc.value.message


def test_complete_profiles_admit(crew, carol, dan, demo_challenge):
    from assay.server.accounts.services import missing_profile_fields, profile_of

    set_(demo_challenge, require_complete_profile=True)
    assert "city" in missing_profile_fields(carol)
    for user in (carol, dan):
        user.first_name, user.last_name = "A", "B"
        user.save()
        profile = profile_of(user)
        for field in profile.REQUIRED_FOR_COMPLETE:
            setattr(profile, field, "x")
        profile.save()
    assert rules.registration_problems(demo_challenge, crew, carol) == []


def test_invite_only_admits_invited_members(crew, carol, demo_challenge, host):
    set_(demo_challenge, invite_only=True)
    added = rules.invite_emails(host, demo_challenge, ["Carol@uni.example", " dan@cs.uni.example ", ""])
    assert added == ["carol@uni.example", "dan@cs.uni.example"]
    assert rules.invite_emails(host, demo_challenge, ["carol@uni.example"]) == []
    assert rules.register(carol, demo_challenge, crew, accept_terms=True)


@pytest.mark.parametrize("emails", [["not an address"], ["<script>@x"], ["a@b.c\nBcc: x@y.z"]])
def test_hostile_invitation_lists_are_refused(demo_challenge, host, emails):
    with pytest.raises(ParticipationError) as exc:
        rules.invite_emails(host, demo_challenge, emails)
    assert exc.value.code == "bad_email"
    assert not demo_challenge.invitations.exists()


def test_only_hosts_invite_approve_and_remove(crew, carol, demo_challenge):
    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    for call in (
        lambda: rules.invite_emails(carol, demo_challenge, ["x@y.example"]),
        lambda: rules.uninvite(carol, demo_challenge, "x@y.example"),
        lambda: rules.set_status(carol, participation, "approved"),
        lambda: rules.remove(carol, participation),
    ):
        with pytest.raises(ParticipationError) as exc:
            call()
        assert exc.value.status == 403


def test_hosts_approve_and_disapprove(crew, carol, demo_challenge, host):
    set_(demo_challenge, manual_participant_approval=True)
    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    rules.set_status(host, participation, Participation.Status.APPROVED)
    assert Participation.objects.get().status == "approved"
    rules.set_status(host, participation, Participation.Status.DISAPPROVED)
    assert Participation.objects.get().status == "disapproved"
    with pytest.raises(ParticipationError):
        rules.set_status(host, participation, "owner")


def test_a_team_leaves_only_without_submissions(crew, carol, dan, demo_challenge, host, media):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    outsider = make_user("eve", "eve@x.example")
    with pytest.raises(ParticipationError):
        rules.withdraw(outsider, participation)
    phase = demo_challenge.phases.get(codename="dev")
    submit(dan, phase, upload(), "preds.json", SubmissionFields())
    with pytest.raises(ParticipationError) as exc:
        rules.withdraw(carol, participation)
    assert exc.value.code == "has_submissions"
    with pytest.raises(ParticipationError):
        rules.remove(host, participation)
    assert Participation.objects.filter(pk=participation.pk).exists()


def test_withdraw_and_host_remove_without_submissions(crew, carol, demo_challenge, host):
    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    rules.withdraw(carol, participation)
    assert not Participation.objects.exists()
    participation = rules.register(carol, demo_challenge, crew, accept_terms=True)
    rules.remove(host, participation)
    assert not Participation.objects.exists()


def test_accept_terms_later(crew, carol, dan, demo_challenge):
    participation = Participation.objects.create(challenge=demo_challenge, team=crew, terms_accepted_at=timezone.now())
    with pytest.raises(ParticipationError):
        rules.accept_terms(make_user("eve", "eve@x.example"), participation)
    rules.accept_terms(dan, participation)
    participation.refresh_from_db()
    assert participation.terms_accepted_by == dan


def test_visibility_of_unpublished_challenges(demo_challenge, host, carol):
    set_(demo_challenge, published=False)
    assert not rules.visible_to(carol, demo_challenge)
    assert rules.visible_to(host, demo_challenge)
