"""The audit workflow's services: answers, reviews (one and two rounds), release and retraction, auditors;
every illegal step refused with its status, every change on the evidence trail."""

from __future__ import annotations

import pytest

from assay.evidence import chain
from assay.server.audits.models import AnswerSet, Release, TrailRecord
from assay.server.audits.services import answers, auditors, release, reviews, trail
from assay.server.audits.services.access import AuditRefusal, may_read_audit
from assay.server.audits.services.overview import overview
from tests.factories import make_user

from .conftest import COMPLETE

pytestmark = pytest.mark.django_db


def refused(status: int, call, *args, **kwargs) -> AuditRefusal:
    with pytest.raises(AuditRefusal) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status, caught.value
    return caught.value


def submitted(audit) -> AnswerSet:
    answers.save_draft(audit.alice, audit.sub_a, COMPLETE)
    return answers.submit_answers(audit.alice, audit.sub_a)


def approved(audit) -> AnswerSet:
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    reviews.decide(audit.auditor, audit.sub_a, 1, "approve", "Complete and consistent.")
    return AnswerSet.objects.get(submission=audit.sub_a)


# --- answers ----------------------------------------------------------------------------------------------


def test_a_draft_may_be_partial_and_is_replaced_on_each_save(audit):
    first = answers.save_draft(audit.alice, audit.sub_a, {"intended_use": "Screening."})
    assert (first.state, first.answers, first.questionnaire) == (
        "draft",
        {"intended_use": "Screening."},
        audit.questionnaire,
    )
    again = answers.save_draft(audit.alice, audit.sub_a, {"risk_tier": "low"})
    assert again.pk == first.pk and again.answers == {"risk_tier": "low"}


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"risk_tier": "medium"}, "question 'risk_tier': 'medium' is not one of the options ['low', 'high']"),
        ({"intended_use": 3}, "question 'intended_use': expected text, got 3"),
        (
            {"intended_us": "x"},
            "'intended_us' is not a question of questionnaire test-v1 1.0; did you mean 'intended_use'?",
        ),
        (["intended_use"], "answers must be a mapping of question id to answer, not a list"),
    ],
)
def test_bad_answers_are_refused_naming_the_problem(audit, given, problem):
    refusal = refused(400, answers.save_draft, audit.alice, audit.sub_a, given)
    assert refusal.problems == [problem]
    assert not AnswerSet.objects.exists()


def test_only_the_team_writes_its_answers(audit):
    refused(404, answers.save_draft, audit.bob, audit.sub_a, COMPLETE)  # another team: not even there
    refused(404, answers.save_draft, make_user("stranger"), audit.sub_a, COMPLETE)
    for user in (audit.host, audit.auditor):
        assert refused(403, answers.save_draft, user, audit.sub_a, COMPLETE).code == "forbidden"
    refused(404, answers.submit_answers, audit.bob, audit.sub_a)
    assert not AnswerSet.objects.exists()


def test_submitting_needs_every_required_answer(audit):
    assert refused(400, answers.submit_answers, audit.alice, audit.sub_a).problems == [
        "question 'intended_use' is required and has no answer",
        "question 'risk_tier' is required and has no answer",
    ]
    answers.save_draft(audit.alice, audit.sub_a, {"intended_use": "Screening.", "risk_tier": ""})
    refusal = refused(400, answers.submit_answers, audit.alice, audit.sub_a)
    assert refusal.problems == ["question 'risk_tier' is required and has no answer"]
    assert AnswerSet.objects.get().state == "draft"


def test_submitted_answers_are_immutable(audit):
    done = submitted(audit)
    assert done.state == "submitted" and done.submitted_at is not None
    assert refused(409, answers.save_draft, audit.alice, audit.sub_a, {"notes": "late"}).code == "immutable"
    refused(409, answers.submit_answers, audit.alice, audit.sub_a)
    assert AnswerSet.objects.get().answers == COMPLETE


def test_no_questionnaire_no_answers(audit):
    audit.questionnaire.delete()
    assert refused(409, answers.save_draft, audit.alice, audit.sub_a, COMPLETE).code == "no_questionnaire"


def test_a_phase_without_audit_takes_no_answers(audit, world):
    plain = world.result("A", 0.7, 0.7, phase="test")
    refused(404, answers.save_draft, audit.alice, plain, COMPLETE)


def test_a_newer_questionnaire_needs_the_draft_saved_again(audit):
    from assay.server.audits.models import Questionnaire

    answers.save_draft(audit.alice, audit.sub_a, COMPLETE)
    Questionnaire.objects.create(
        challenge=audit.challenge, version="1.1", schema=audit.questionnaire.schema, sha256="1" * 64
    )
    assert refused(409, answers.submit_answers, audit.alice, audit.sub_a).code == "questionnaire_changed"
    answers.save_draft(audit.alice, audit.sub_a, COMPLETE)
    assert answers.submit_answers(audit.alice, audit.sub_a).questionnaire.version == "1.1"


# --- reviews ----------------------------------------------------------------------------------------------


def test_a_review_starts_only_on_submitted_answers(audit):
    refused(409, reviews.start_review, audit.auditor, audit.sub_a)  # nothing answered
    answers.save_draft(audit.alice, audit.sub_a, COMPLETE)
    assert refused(409, reviews.start_review, audit.auditor, audit.sub_a).code == "not_submitted"
    answers.submit_answers(audit.alice, audit.sub_a)
    review = reviews.start_review(audit.auditor, audit.sub_a)
    assert (review.round, review.reviewer) == (1, audit.auditor)
    assert AnswerSet.objects.get().state == "under_review"
    assert (
        "already under review by auditor1"
        in refused(409, reviews.start_review, audit.second_auditor, audit.sub_a).message
    )


def test_who_may_review(audit):
    submitted(audit)
    refused(403, reviews.start_review, audit.alice, audit.sub_a)  # the participant: sees it, may not review
    refused(403, reviews.start_review, audit.host, audit.sub_a)  # a host who is no auditor
    refused(404, reviews.start_review, audit.bob, audit.sub_a)
    assert AnswerSet.objects.get().state == "submitted"


def test_an_unfinished_evaluation_is_not_reviewed(audit, world):
    sub = world.result("A", None, None, status="running")
    answers.save_draft(audit.alice, sub, COMPLETE)
    answers.submit_answers(audit.alice, sub)
    assert refused(409, reviews.start_review, audit.auditor, sub).code == "not_evaluated"


@pytest.mark.parametrize(
    ("ratings", "problem"),
    [
        ({"nope": {"rating": 3}}, "'nope' is not a question of this questionnaire"),
        ({"risk_tier": {"rating": 0}}, "question 'risk_tier': the rating is a whole number from 1 to 5"),
        ({"risk_tier": {"rating": 6}}, "question 'risk_tier': the rating is a whole number from 1 to 5"),
        ({"risk_tier": {"rating": 3.0}}, "question 'risk_tier': the rating is a whole number from 1 to 5"),
        ({"risk_tier": {"rating": True}}, "question 'risk_tier': the rating is a whole number from 1 to 5"),
        ({"risk_tier": {"rating": 3, "score": 1}}, "question 'risk_tier': give {rating, comment} and nothing else"),
        (
            {"risk_tier": {"rating": 3, "comment": "x" * 4001}},
            "question 'risk_tier': the comment is text of at most 4000 characters",
        ),
        ([3], "ratings must be a mapping of question id to {rating, comment}"),
    ],
)
def test_bad_ratings_are_refused(audit, ratings, problem):
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    assert refused(400, reviews.rate, audit.auditor, audit.sub_a, 1, ratings).problems == [problem]


def test_ratings_accumulate_and_only_the_rounds_reviewer_rates(audit):
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    reviews.rate(audit.auditor, audit.sub_a, 1, {"intended_use": {"rating": 2, "comment": " vague "}})
    review = reviews.rate(audit.auditor, audit.sub_a, 1, {"risk_tier": {"rating": 5}}, comment="So far so good.")
    assert review.ratings == {
        "intended_use": {"rating": 2, "comment": "vague"},
        "risk_tier": {"rating": 5, "comment": ""},
    }
    assert review.comment == "So far so good."
    refused(403, reviews.rate, audit.second_auditor, audit.sub_a, 1, {"risk_tier": {"rating": 1}})
    refused(404, reviews.rate, audit.auditor, audit.sub_a, 2, {"risk_tier": {"rating": 1}})
    refused(403, reviews.rate, audit.alice, audit.sub_a, 1, {"risk_tier": {"rating": 1}})


def test_a_rejection_needs_a_reason_and_a_decision_is_final(audit):
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    assert refused(400, reviews.decide, audit.auditor, audit.sub_a, 1, "reject", "  ").message == (
        "A rejection needs a comment saying why."
    )
    refused(400, reviews.decide, audit.auditor, audit.sub_a, 1, "maybe")
    reviews.decide(audit.auditor, audit.sub_a, 1, "reject", "No intended population given.")
    assert AnswerSet.objects.get().state == "rejected"
    refused(409, reviews.decide, audit.auditor, audit.sub_a, 1, "approve")
    refused(409, reviews.rate, audit.auditor, audit.sub_a, 1, {"risk_tier": {"rating": 1}})
    refused(409, reviews.start_review, audit.second_auditor, audit.sub_a)
    refused(409, answers.save_draft, audit.alice, audit.sub_a, COMPLETE)


def test_a_second_review_by_another_auditor_decides(audit):
    submitted(audit)
    refused(400, reviews.start_review, audit.auditor, audit.sub_a, second_review_required="yes")
    reviews.start_review(audit.auditor, audit.sub_a, second_review_required=True)
    refused(409, reviews.start_review, audit.second_auditor, audit.sub_a)  # round 1 is still open
    reviews.decide(audit.auditor, audit.sub_a, 1, "approve")
    assert AnswerSet.objects.get().state == "under_review"
    assert refused(409, reviews.start_review, audit.auditor, audit.sub_a).code == "same_reviewer"
    second = reviews.start_review(audit.second_auditor, audit.sub_a)
    assert second.round == 2
    reviews.decide(audit.second_auditor, audit.sub_a, 2, "reject", "Labelling quality is not described.")
    assert AnswerSet.objects.get().state == "rejected"
    assert [(r.round, r.decision) for r in reviews.reviews_of(audit.alice, audit.sub_a)] == [
        (1, "approve"),
        (2, "reject"),
    ]
    refused(404, reviews.reviews_of, audit.bob, audit.sub_a)


# --- release ----------------------------------------------------------------------------------------------


def test_release_only_after_approval_and_by_hosts(audit):
    refused(409, release.release, audit.host, audit.sub_a)
    submitted(audit)
    assert refused(409, release.release, audit.host, audit.sub_a).code == "not_approved"
    reviews.start_review(audit.auditor, audit.sub_a)
    reviews.decide(audit.auditor, audit.sub_a, 1, "approve")
    refused(403, release.release, audit.auditor, audit.sub_a)
    refused(403, release.release, audit.alice, audit.sub_a)
    refused(404, release.release, audit.bob, audit.sub_a)
    assert not may_read_audit(audit.alice, audit.sub_a)
    row = release.release(audit.host, audit.sub_a)
    assert (row.state, row.released_by) == ("released", audit.host)
    assert may_read_audit(audit.alice, audit.sub_a)
    refused(409, release.release, audit.host, audit.sub_a)


def test_a_rejected_audit_is_not_released(audit):
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    reviews.decide(audit.auditor, audit.sub_a, 1, "reject", "Incomplete.")
    assert "this one is rejected" in refused(409, release.release, audit.host, audit.sub_a).message


def test_retraction_keeps_the_row_and_shows_the_reason(audit):
    approved(audit)
    refused(409, release.retract, audit.host, audit.sub_a, "too early")  # nothing released yet
    release.release(audit.host, audit.sub_a)
    for reason in ("", "   ", None, 3, "x" * 4001):
        refused(400, release.retract, audit.host, audit.sub_a, reason)
    refused(403, release.retract, audit.auditor, audit.sub_a, "not mine to say")
    row = release.retract(audit.host, audit.sub_a, "  The reference labels of site B were wrong.  ")
    assert Release.objects.filter(pk=row.pk, state="retracted").exists()
    assert row.retraction_reason == "The reference labels of site B were wrong."
    assert not may_read_audit(audit.alice, audit.sub_a)
    seen = overview(audit.alice, audit.sub_a)
    assert seen["release"]["state"] == "retracted"
    assert seen["release"]["retraction_reason"] == "The reference labels of site B were wrong."
    assert seen["summary"] is None
    refused(409, release.retract, audit.host, audit.sub_a, "again")
    refused(409, release.release, audit.host, audit.sub_a)


# --- the overview -----------------------------------------------------------------------------------------


def test_the_overview_shows_the_summary_to_the_team_only_once_released(audit):
    from assay.server.audits.models import AuditSummary

    AuditSummary.objects.create(
        submission=audit.sub_a, document={"task": "binary", "n": 3}, settings_sha256="a" * 64, cases_sha256="b" * 64
    )
    approved(audit)
    assert overview(audit.alice, audit.sub_a)["summary"] is None
    assert overview(audit.auditor, audit.sub_a)["summary"] == {"task": "binary", "n": 3}
    release.release(audit.host, audit.sub_a)
    seen = overview(audit.alice, audit.sub_a)
    assert seen["summary"] == {"task": "binary", "n": 3}
    assert seen["state"] == "approved" and seen["reviews"][0]["decision"] == "approve"
    assert seen["may"] == {"answer": True, "review": False, "release": False, "read_cases": False, "read_results": True}
    refused(404, overview, audit.bob, audit.sub_a)


# --- auditors ---------------------------------------------------------------------------------------------


def test_hosts_name_auditors_by_username_or_verified_email(audit):
    carol = make_user("carol", "Carol@Hospital.example")
    dave = make_user("dave", "dave@hospital.example", verified=False)
    assert auditors.add_auditor(audit.host, audit.challenge, "carol@hospital.example").user == carol
    assert auditors.add_auditor(audit.host, audit.challenge, "DAVE").user == dave
    refused(400, auditors.add_auditor, audit.host, audit.challenge, "dave@hospital.example")  # unverified
    refused(409, auditors.add_auditor, audit.host, audit.challenge, "carol")
    refused(400, auditors.add_auditor, audit.host, audit.challenge, "nobody")
    refused(400, auditors.add_auditor, audit.host, audit.challenge, "")
    refused(400, auditors.add_auditor, audit.host, audit.challenge, ["carol"])
    listed = [a.user.username for a in auditors.list_auditors(audit.auditor, audit.challenge)]
    assert listed == ["auditor1", "auditor2", "carol", "dave"]


def test_a_participant_cannot_be_named_auditor(audit):
    refusal = refused(409, auditors.add_auditor, audit.host, audit.challenge, audit.alice.username)
    assert refusal.message == (
        "userA is a member of team 'A', which takes part in this challenge; an auditor may not be a participant"
        " of the challenge they audit."
    )


def test_only_hosts_manage_auditors(audit):
    for user in (audit.alice, audit.auditor):
        refused(403, auditors.add_auditor, user, audit.challenge, "auditor2")
        refused(403, auditors.remove_auditor, user, audit.challenge, audit.second_auditor.pk)
    refused(403, auditors.list_auditors, audit.alice, audit.challenge)


def test_removing_an_auditor_ends_their_access_and_keeps_their_reviews(audit):
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a)
    auditors.remove_auditor(audit.host, audit.challenge, audit.auditor.pk)
    refused(404, auditors.remove_auditor, audit.host, audit.challenge, audit.auditor.pk)
    refused(404, reviews.rate, audit.auditor, audit.sub_a, 1, {"risk_tier": {"rating": 3}})
    assert [r.reviewer for r in reviews.reviews_of(audit.host, audit.sub_a)] == [audit.auditor]


# --- the trail --------------------------------------------------------------------------------------------


def test_every_change_is_on_the_trail_in_order_and_the_chain_holds(audit):
    before = TrailRecord.objects.filter(submission=audit.sub_a).count()  # e.g. "submitted", recorded elsewhere
    answers.save_draft(audit.alice, audit.sub_a, {"intended_use": "Screening."})
    submitted(audit)
    reviews.start_review(audit.auditor, audit.sub_a, second_review_required=True)
    reviews.rate(audit.auditor, audit.sub_a, 1, {"risk_tier": {"rating": 4}})
    reviews.decide(audit.auditor, audit.sub_a, 1, "approve")
    reviews.start_review(audit.second_auditor, audit.sub_a)
    reviews.decide(audit.second_auditor, audit.sub_a, 2, "approve")
    release.release(audit.host, audit.sub_a)
    release.retract(audit.host, audit.sub_a, "Wrong labels.")
    rows = list(TrailRecord.objects.filter(submission=audit.sub_a).order_by("seq"))[before:]
    assert [(r.kind, r.actor) for r in rows] == [
        ("answered", "userA"),
        ("answered", "userA"),
        ("answers_submitted", "userA"),
        ("review_started", "auditor1"),
        ("reviewed", "auditor1"),
        ("reviewed", "auditor1"),
        ("review_started", "auditor2"),
        ("approved", "auditor2"),
        ("released", "host1"),
        ("retracted", "host1"),
    ]
    assert rows[2].payload == {"questionnaire": "1.0", "answers_sha256": answers.answers_sha256(COMPLETE)}
    assert rows[5].payload == {"round": 1, "decision": "approve", "final": False}
    assert rows[-1].payload == {"reason": "Wrong labels."}
    assert chain.broken_links(trail.export(audit.sub_a)) == []
    assert not TrailRecord.objects.filter(submission=audit.sub_b).exclude(kind="submitted").exists()


def test_a_refused_step_leaves_no_trail(audit):
    submitted(audit)
    before = TrailRecord.objects.count()
    refused(409, answers.save_draft, audit.alice, audit.sub_a, COMPLETE)
    refused(403, reviews.start_review, audit.alice, audit.sub_a)
    refused(409, release.release, audit.host, audit.sub_a)
    assert TrailRecord.objects.count() == before


def test_an_auditor_may_not_take_part_in_the_challenge_they_audit(audit):
    from assay.server.challenges.services.participation import joining_problems, registration_problems
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

    own = ParticipantTeam.objects.create(name="Auditor's team", created_by=audit.auditor)
    ParticipantTeamMember.objects.create(team=own, user=audit.auditor)
    assert "auditor1 audits this challenge; an auditor may not take part in it" in registration_problems(
        audit.challenge, own, audit.auditor
    )
    assert joining_problems(audit.sub_a.participant_team, audit.auditor) == [
        f"{audit.challenge.title}: auditor1 audits this challenge; an auditor may not take part in it"
    ]
