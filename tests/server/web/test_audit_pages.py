"""The audit pages as every role: the team answers (draft, submit), auditors review (start, rate, decide),
hosts release and retract and name auditors; each refusal with its exact status (302 to the login page for
the anonymous, 404 for what a user may not see, 403 for an act on an audit they see)."""

from __future__ import annotations

import pytest

from assay.server.audits.models import AnswerSet, Release, Review
from assay.server.challenges.models import ChallengeAuditor
from tests.factories import make_user

from .audit_world import COMPLETE, approved, client_for, released

pytestmark = pytest.mark.django_db


def audit_url(sub, tail: str = "") -> str:
    return f"/submissions/{sub.pk}/audit{tail}"


def roles(a) -> dict:
    return {
        "team": a.alice,
        "other_team": a.bob,
        "auditor": a.auditor,
        "host": a.host,
        "stranger": make_user("stranger"),
        "staff": make_user("staffer", staff=True),
    }


# --- who sees the audit page and the report --------------------------------------------------------------


def test_the_anonymous_are_sent_to_sign_in(audited):
    anonymous = client_for(None)
    for tail in ("", "/report", "/report.pdf", "/manifest.json"):
        response = anonymous.get(audit_url(audited.sub_a, tail))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), tail
    assert anonymous.post(audit_url(audited.sub_a, "/answers"), {"q_notes": "x"}).status_code == 302
    assert anonymous.get("/audits/").status_code == 302
    assert not AnswerSet.objects.exists()


@pytest.mark.parametrize(
    ("role", "page", "report"),
    [
        ("team", 200, 403),  # the team sees its audit; its results once released
        ("other_team", 404, 404),
        ("stranger", 404, 404),
        ("auditor", 200, 200),
        ("host", 200, 200),
        ("staff", 200, 200),
    ],
)
def test_audit_page_and_unreleased_report_by_role(audited, role, page, report):
    client = client_for(roles(audited)[role])
    assert client.get(audit_url(audited.sub_a)).status_code == page
    for tail in ("/report", "/manifest.json"):
        assert client.get(audit_url(audited.sub_a, tail)).status_code == report, tail


def test_the_team_is_told_why_it_cannot_read_the_report_yet(audited):
    response = client_for(audited.alice).get(audit_url(audited.sub_a, "/report"))
    assert response.status_code == 403
    assert "private until the challenge&#x27;s hosts release them" in response.content.decode()


def test_a_submission_of_an_unaudited_phase_has_no_audit_page(audited, world):
    plain = world.result("A", 0.5, 0.5, phase="test")
    for user in (audited.alice, audited.host):
        assert client_for(user).get(audit_url(plain)).status_code == 404
    assert client_for(audited.host).get("/submissions/999999/audit").status_code == 404


# --- the team answers ----------------------------------------------------------------------------------------


def test_the_team_saves_a_draft_from_the_form_then_submits(audited):
    client = client_for(audited.alice)
    page = client.get(audit_url(audited.sub_a)).content.decode()
    assert 'name="q_intended_use"' in page and 'name="q_risk_tier"' in page and "Submit for review" in page
    response = client.post(audit_url(audited.sub_a, "/answers"), {"q_intended_use": "Grading.", "action": "save"})
    assert response.status_code == 302 and response["Location"] == audit_url(audited.sub_a)
    answer_set = AnswerSet.objects.get(submission=audited.sub_a)
    assert (answer_set.state, answer_set.answers) == ("draft", {"intended_use": "Grading."})
    assert "Grading." in client.get(audit_url(audited.sub_a)).content.decode()  # the draft fills the form
    form = {"q_intended_use": COMPLETE["intended_use"], "q_risk_tier": "high", "action": "submit"}
    assert client.post(audit_url(audited.sub_a, "/answers"), form).status_code == 302
    answer_set.refresh_from_db()
    assert (answer_set.state, answer_set.answers) == ("submitted", COMPLETE)
    page = client.get(audit_url(audited.sub_a)).content.decode()
    assert 'name="q_intended_use"' not in page and "Submitted for review" in page  # read-only now


def test_submitting_incomplete_answers_keeps_them_as_a_draft_and_names_what_is_missing(audited):
    client = client_for(audited.alice)
    response = client.post(audit_url(audited.sub_a, "/answers"), {"q_intended_use": "Grading.", "action": "submit"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "question &#x27;risk_tier&#x27; is required and has no answer" in page
    assert "Grading.</textarea>" in page  # what was typed stays in the form
    assert AnswerSet.objects.get(submission=audited.sub_a).state == "draft"


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"q_risk_tier": "medium"}, "&#x27;medium&#x27; is not one of the options"),
        ({"q_intended_use": "x" * 20_001}, "the limit is 20,000"),
    ],
)
def test_malformed_or_oversized_answers_are_refused_with_the_reason(audited, form, problem):
    response = client_for(audited.alice).post(audit_url(audited.sub_a, "/answers"), {**form, "action": "save"})
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not AnswerSet.objects.exists()


def answers_file(content: bytes, name: str = "answers.yaml"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_the_team_loads_its_answers_from_a_file_into_the_draft(audited):
    client = client_for(audited.alice)
    text = b"intended_use: Grading retinal photographs.\nrisk_tier: high\n"
    response = client.post(audit_url(audited.sub_a, "/answers"), {"action": "load", "answers_file": answers_file(text)})
    assert response.status_code == 302
    answer_set = AnswerSet.objects.get(submission=audited.sub_a)
    assert (answer_set.state, answer_set.answers) == ("draft", COMPLETE)
    assert "saved as your draft" in client.get(audit_url(audited.sub_a)).content.decode()


@pytest.mark.parametrize(
    ("content", "status", "problem"),
    [
        (b"[just, a, list]", 302, "an answers file must map question ids to answers"),
        (b"intended_use: [unclosed\n", 302, "The answers file cannot be read"),
        (b"x: " + b"y" * (1024 * 1024), 302, "An answers file is at most 1024 KiB"),
        (b"intended_us: typo\n", 400, "did you mean &#x27;intended_use&#x27;?"),
        (None, 302, "Choose an answers file"),
    ],
)
def test_a_bad_answers_file_is_refused_with_why(audited, content, status, problem):
    client = client_for(audited.alice)
    form = {"action": "load"} | ({"answers_file": answers_file(content)} if content is not None else {})
    response = client.post(audit_url(audited.sub_a, "/answers"), form)
    assert response.status_code == status
    page = response.content.decode() if status == 400 else client.get(audit_url(audited.sub_a)).content.decode()
    assert problem in page
    assert not AnswerSet.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("other_team", 404), ("stranger", 404), ("host", 403), ("auditor", 403)])
def test_only_the_team_answers(audited, role, status):
    response = client_for(roles(audited)[role]).post(audit_url(audited.sub_a, "/answers"), {"q_notes": "x"})
    assert response.status_code == status
    assert not AnswerSet.objects.exists()


# --- auditors review -----------------------------------------------------------------------------------------


def submitted(a) -> None:
    client_for(a.alice).post(
        audit_url(a.sub_a, "/answers"), {"q_intended_use": "Grading.", "q_risk_tier": "high", "action": "submit"}
    )


def test_an_auditor_starts_rates_and_approves_after_confirming(audited):
    submitted(audited)
    client = client_for(audited.auditor)
    assert 'id="start-review"' in client.get(audit_url(audited.sub_a)).content.decode()
    assert client.post(audit_url(audited.sub_a, "/review/start")).status_code == 302
    page = client.get(audit_url(audited.sub_a)).content.decode()
    assert 'name="rating_intended_use"' in page and "Your review (round 1)" in page
    ratings = {"round": "1", "rating_intended_use": "4", "comment_intended_use": "Clear.", "rating_risk_tier": "3"}
    assert client.post(audit_url(audited.sub_a, "/review/save"), ratings).status_code == 302
    review = Review.objects.get()
    assert review.ratings == {
        "intended_use": {"rating": 4, "comment": "Clear."},
        "risk_tier": {"rating": 3, "comment": ""},
    }
    asked = client.post(audit_url(audited.sub_a, "/review/approve"), {**ratings, "comment": "Fine."})
    assert asked.status_code == 200 and "Yes, approve" in asked.content.decode()  # a decision is final: asked
    assert AnswerSet.objects.get().state == "under_review"
    done = client.post(audit_url(audited.sub_a, "/review/approve"), {**ratings, "comment": "Fine.", "confirmed": "yes"})
    assert done.status_code == 302
    assert AnswerSet.objects.get().state == "approved"
    assert Review.objects.get().decision == "approve"
    team_page = client_for(audited.alice).get(audit_url(audited.sub_a)).content.decode()
    assert "4/5" in team_page and "Clear." in team_page  # the team reads the ratings on its answers


def test_a_rejection_needs_a_comment_and_a_comment_needs_a_rating(audited):
    submitted(audited)
    client = client_for(audited.auditor)
    client.post(audit_url(audited.sub_a, "/review/start"))
    response = client.post(audit_url(audited.sub_a, "/review/save"), {"round": "1", "comment_risk_tier": "Why?"})
    assert response.status_code == 302 and Review.objects.get().ratings == {}
    page = client.get(audit_url(audited.sub_a)).content.decode()
    assert "has a comment but no rating" in page
    client.post(audit_url(audited.sub_a, "/review/reject"), {"round": "1", "comment": "", "confirmed": "yes"})
    assert AnswerSet.objects.get().state == "under_review"
    assert "A rejection needs a comment" in client.get(audit_url(audited.sub_a)).content.decode()


def test_a_second_review_is_offered_to_another_auditor_and_decides(audited):
    submitted(audited)
    first, second = client_for(audited.auditor), client_for(audited.second_auditor)
    first.post(audit_url(audited.sub_a, "/review/start"), {"second_review_required": "on"})
    first.post(audit_url(audited.sub_a, "/review/approve"), {"round": "1", "confirmed": "yes"})
    assert AnswerSet.objects.get().state == "under_review"  # round 1 decided, not final
    assert 'id="start-review"' not in first.get(audit_url(audited.sub_a)).content.decode()
    page = second.get(audit_url(audited.sub_a)).content.decode()
    assert "Start the second review" in page and "a second review is required" in page
    assert second.post(audit_url(audited.sub_a, "/review/start")).status_code == 302
    rejection = {"round": "2", "comment": "Risk tier unjustified.", "confirmed": "yes"}
    second.post(audit_url(audited.sub_a, "/review/reject"), rejection)
    assert AnswerSet.objects.get().state == "rejected"
    assert [(r.round, r.decision) for r in Review.objects.order_by("round")] == [(1, "approve"), (2, "reject")]
    assert "Risk tier unjustified." in client_for(audited.alice).get(audit_url(audited.sub_a)).content.decode()


@pytest.mark.parametrize(("role", "status"), [("team", 403), ("host", 403), ("other_team", 404), ("stranger", 404)])
def test_only_auditors_review(audited, role, status):
    submitted(audited)
    response = client_for(roles(audited)[role]).post(audit_url(audited.sub_a, "/review/start"))
    assert response.status_code == status
    assert not Review.objects.exists()


def test_an_unknown_review_action_is_404(audited):
    assert client_for(audited.auditor).post(audit_url(audited.sub_a, "/review/delete")).status_code == 404


# --- hosts release and retract ---------------------------------------------------------------------------------


def test_a_host_releases_then_the_team_reads_the_report(audited):
    approved(audited)
    host = client_for(audited.host)
    assert 'id="release-button"' in host.get(audit_url(audited.sub_a)).content.decode()
    assert host.post(audit_url(audited.sub_a, "/release/release")).status_code == 302
    assert Release.objects.get().state == "released"
    team = client_for(audited.alice)
    assert team.get(audit_url(audited.sub_a, "/report")).status_code == 200
    assert team.get(audit_url(audited.sub_a, "/manifest.json")).status_code == 200
    assert client_for(audited.bob).get(audit_url(audited.sub_a, "/report")).status_code == 404


def test_release_before_approval_is_refused_with_the_state(audited):
    submitted(audited)
    host = client_for(audited.host)
    host.post(audit_url(audited.sub_a, "/release/release"))
    assert not Release.objects.exists()
    assert "Only an approved audit is released" in host.get(audit_url(audited.sub_a)).content.decode()


def test_a_retraction_asks_first_needs_a_reason_and_is_shown_to_the_team(audited):
    released(audited)
    host = client_for(audited.host)
    assert host.post(audit_url(audited.sub_a, "/release/retract"), {"reason": " "}).status_code == 302
    assert Release.objects.get().state == "released"  # no reason: nothing happened
    asked = host.post(audit_url(audited.sub_a, "/release/retract"), {"reason": "A labelling error in site 3."})
    assert asked.status_code == 200 and "Yes, retract" in asked.content.decode()
    assert Release.objects.get().state == "released"
    done = host.post(
        audit_url(audited.sub_a, "/release/retract"), {"reason": "A labelling error in site 3.", "confirmed": "yes"}
    )
    assert done.status_code == 302
    assert Release.objects.get().state == "retracted"
    response = client_for(audited.alice).get(audit_url(audited.sub_a, "/report"))
    assert response.status_code == 403 and "A labelling error in site 3." in response.content.decode()
    assert "A labelling error in site 3." in client_for(audited.alice).get(audit_url(audited.sub_a)).content.decode()


@pytest.mark.parametrize(("role", "status"), [("team", 403), ("auditor", 403), ("other_team", 404), ("stranger", 404)])
def test_only_hosts_release(audited, role, status):
    approved(audited)
    response = client_for(roles(audited)[role]).post(audit_url(audited.sub_a, "/release/release"))
    assert response.status_code == status
    assert not Release.objects.exists()


# --- lists and auditors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees"),
    [("team", (True, False)), ("other_team", (False, True)), ("auditor", (True, True)), ("host", (True, True)),
     ("stranger", (False, False))],
)  # fmt: skip
def test_audit_lists_show_each_user_what_they_may_see(audited, role, sees):
    page = client_for(roles(audited)[role]).get("/audits/").content.decode()
    assert (f'id="audit-{audited.sub_a.pk}"' in page, f'id="audit-{audited.sub_b.pk}"' in page) == sees


def test_hosts_name_and_remove_auditors_on_the_host_page(audited):
    url = f"/challenges/{audited.challenge.pk}/host/"
    host = client_for(audited.host)
    page = host.get(url + "audits").content.decode()
    assert "auditor1" in page and f'id="audit-{audited.sub_a.pk}"' in page
    make_user("carol")
    assert host.post(url + "auditors", {"who": "carol"}).status_code == 302
    assert ChallengeAuditor.objects.filter(challenge=audited.challenge, user__username="carol").exists()
    host.post(url + "auditors", {"who": "nobody-here"})
    assert "No user has the username" in host.get(url + "audits").content.decode()
    asked = host.post(url + f"auditors/{audited.auditor.pk}/remove")
    assert asked.status_code == 200 and "Yes, remove" in asked.content.decode()
    assert host.post(url + f"auditors/{audited.auditor.pk}/remove", {"confirmed": "yes"}).status_code == 302
    assert not ChallengeAuditor.objects.filter(user=audited.auditor).exists()
    assert host.post(url + "auditors/999999/remove", {"confirmed": "yes"}).status_code == 404


@pytest.mark.parametrize("role", ["team", "auditor", "other_team", "stranger"])
def test_the_host_audit_pages_are_the_hosts(audited, role):
    url = f"/challenges/{audited.challenge.pk}/host/"
    client = client_for(roles(audited)[role])
    assert client.get(url + "audits").status_code == 404
    assert client.post(url + "auditors", {"who": "stranger"}).status_code == 404
    assert client.post(url + f"auditors/{audited.auditor.pk}/remove", {"confirmed": "yes"}).status_code == 404
    assert ChallengeAuditor.objects.filter(challenge=audited.challenge).count() == 2


def test_submission_lists_link_to_the_audit(audited):
    mine = client_for(audited.alice).get(f"/challenges/{audited.challenge.pk}/submissions").content.decode()
    assert f'href="/submissions/{audited.sub_a.pk}/audit"' in mine
    hosts = client_for(audited.host).get(f"/challenges/{audited.challenge.pk}/host/submissions").content.decode()
    assert f'href="/submissions/{audited.sub_a.pk}/audit"' in hosts
