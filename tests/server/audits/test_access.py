"""The one audit access rule (audits.services.access), role by role and stage by stage."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from assay.server.audits.models import Release
from assay.server.audits.services import access
from assay.server.audits.services.access import AuditRefusal
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _release(audit, state=Release.State.RELEASED):
    return Release.objects.create(
        submission=audit.sub_a,
        state=state,
        released_by=audit.host,
        released_at=timezone.now(),
        retraction_reason="wrong labels" if state == Release.State.RETRACTED else "",
    )


def test_overseers_read_everything_before_release(audit):
    staff = make_user("root", staff=True)
    for user in (audit.host, audit.auditor, staff):
        assert access.may_read_cases(user, audit.sub_a)
        assert access.may_see_audit(user, audit.sub_a)
        assert access.may_read_audit(user, audit.sub_a)


def test_the_team_sees_its_audit_but_reads_results_only_while_released(audit):
    assert access.may_see_audit(audit.alice, audit.sub_a)
    assert access.may_answer(audit.alice, audit.sub_a)
    assert not access.may_read_cases(audit.alice, audit.sub_a)
    assert not access.may_read_audit(audit.alice, audit.sub_a)
    release = _release(audit)
    assert access.may_read_audit(audit.alice, audit.sub_a)
    assert not access.may_read_cases(audit.alice, audit.sub_a), "per-case rows never, released or not"
    release.state = Release.State.RETRACTED
    release.save()
    assert not access.may_read_audit(audit.alice, audit.sub_a)
    assert access.may_see_audit(audit.alice, audit.sub_a), "the retraction's reason stays readable"


def test_other_teams_and_strangers_see_nothing(audit):
    _release(audit)
    for user in (audit.bob, make_user("stranger"), AnonymousUser()):
        for rule in (
            access.may_read_cases,
            access.may_see_audit,
            access.may_read_audit,
            access.may_answer,
            access.may_review,
            access.may_release,
        ):
            assert not rule(user, audit.sub_a), (user, rule.__name__)
        with pytest.raises(AuditRefusal) as refused:
            access.require(access.may_answer, user, audit.sub_a, "no")
        assert refused.value.status == 404


def test_who_answers_reviews_and_releases(audit):
    assert [access.may_answer(u, audit.sub_a) for u in (audit.alice, audit.host, audit.auditor)] == [True, False, False]
    assert [access.may_review(u, audit.sub_a) for u in (audit.alice, audit.host, audit.auditor)] == [False, False, True]
    assert [access.may_release(u, audit.sub_a) for u in (audit.alice, audit.host, audit.auditor)] == [
        False,
        True,
        False,
    ]
    with pytest.raises(AuditRefusal) as refused:
        access.require(access.may_review, audit.alice, audit.sub_a, "Only the challenge's auditors review.")
    assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_an_auditor_never_reviews_their_own_team(audit):
    from assay.server.teams.models import ParticipantTeamMember

    ParticipantTeamMember.objects.create(team=audit.sub_a.participant_team, user=audit.auditor)
    assert not access.may_review(audit.auditor, audit.sub_a)
    assert access.may_review(audit.auditor, audit.sub_b)
    assert list(access.reviewable_audits(audit.auditor)) == [audit.sub_b]


def test_an_auditor_sees_only_the_challenges_they_audit(audit, media):
    from assay.server.challenges.models import ChallengePhase
    from assay.server.teams.services import create_host_team
    from tests.factories import World, import_published

    other_host = make_user("host2")
    other = import_published(create_host_team("Hosts Two", other_host))
    ChallengePhase.objects.filter(challenge=other, codename="dev").update(audit={"task": "binary"})
    elsewhere = World(other, other_host).result("C", 0.5, 0.5)
    assert not access.may_see_audit(audit.auditor, elsewhere)
    assert not access.may_read_cases(audit.auditor, elsewhere)
    assert not access.may_review(audit.auditor, elsewhere)
    assert list(access.audited_challenges(audit.auditor)) == [audit.challenge]
    assert set(access.visible_audits(audit.auditor)) == {audit.sub_a, audit.sub_b}
    assert set(access.visible_audits(audit.alice)) == {audit.sub_a}
    assert set(access.visible_audits(other_host)) == {elsewhere}


def test_a_phase_without_audit_has_no_audit_to_see(audit, world):
    plain = world.result("A", 0.7, 0.7, phase="test")
    assert not access.may_see_audit(audit.host, plain)
    assert not access.may_answer(audit.alice, plain)
    assert access.may_read_cases(audit.host, plain), "per-case rows do not need an audit"
