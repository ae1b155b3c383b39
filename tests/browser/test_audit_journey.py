"""The audit journey in a real browser (issue 14): the team answers the questionnaire and submits it, an
auditor rates and approves, a host releases, and the team reads the report and its PDF; the questionnaire
form, the rating form and the report pass the accessibility checks (tests/browser/a11y.py).

The audited submission is seeded (a finished submission with a summary computed by ``assay.audit`` from
seeded per-case rows, as the server stores it after an evaluation); everything after that is clicks."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests.server.audits.conftest import SCHEMA
from tests.server.web.audit_world import SETTINGS, case_rows

from . import a11y
from .conftest import make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audited_submission(demo):
    """Team Dora's finished submission to the demo's audited dev phase, with its summary; auditor Ada."""
    from assay.audit.summary import summarise
    from assay.server.audits.models import AuditSummary, Questionnaire
    from assay.server.challenges.models import ChallengeAuditor, Participation
    from assay.server.submissions.models import Submission
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember

    phase = demo.phases.get(codename="dev")
    phase.audit = SETTINGS
    phase.save(update_fields=["audit"])
    dora, ada = make_user("dora"), make_user("ada")
    team = ParticipantTeam.objects.create(name="Team Dora", created_by=dora)
    ParticipantTeamMember.objects.create(team=team, user=dora)
    Participation.objects.create(challenge=demo, team=team)
    ChallengeAuditor.objects.create(challenge=demo, user=ada)
    Questionnaire.objects.create(challenge=demo, version="1.0", schema=SCHEMA, sha256="0" * 64)
    sub = Submission.objects.create(
        phase=phase, participant_team=team, created_by=dora, status="finished", method_name="RetinaGrade"
    )
    AuditSummary.objects.create(
        submission=sub, document=summarise(SETTINGS, case_rows()), settings_sha256="1" * 64, cases_sha256="2" * 64
    )
    return sub


def test_team_answers_auditor_approves_host_releases_and_the_report_shows(new_page, demo, audited_submission):
    sub = audited_submission
    audit = f"/submissions/{sub.pk}/audit"

    # the team answers from its Audits list: a draft first, then the complete answers submitted
    team = new_page()
    sign_in(team, "dora")
    team.goto("/audits/")
    team.click(f"#audit-{sub.pk} a")
    team.fill("#q_intended_use", "Grading retinal photographs in screening.")
    team.click("#save-answers")
    team.wait_for_selector("text=saved as a draft")
    team.check("#q_risk_tier-2")  # "high"
    assert a11y.problems(team) == []  # the questionnaire form: labels, headings, contrast, focus
    shot(team, "audit-01-answers")
    team.click("#submit-answers")
    team.wait_for_selector("#audit-answer-state:has-text('Submitted for review')")
    assert team.locator("#audit-report-link").count() == 0  # not released: no report for the team yet

    # the auditor starts the review, rates an answer and approves (a decision asks first)
    auditor = new_page()
    sign_in(auditor, "ada")
    auditor.goto(audit)
    auditor.click("#start-review")
    auditor.select_option("#rating-intended_use", "4")
    auditor.fill("#comment-intended_use", "Clear and specific.")
    auditor.select_option("#rating-risk_tier", "3")
    auditor.fill("#review-comment", "Approved for release.")
    assert a11y.problems(auditor) == []  # the rating form
    shot(auditor, "audit-02-review")
    auditor.click("#approve-button")
    auditor.click("#confirm-button")  # "Yes, approve"
    auditor.wait_for_selector("#audit-answer-state:has-text('Approved')")

    # the host releases
    host = new_page()
    sign_in(host, "hostess")
    host.goto(f"/challenges/{demo.pk}/host/audits")
    host.click(f"#audit-{sub.pk} a")
    host.click("#release-button")
    host.wait_for_selector("#audit-release-state:has-text('released')")

    # the team reads the report: figures with intervals, the plots, the subgroup table, the ratings
    team.goto(audit)
    team.click("#audit-report-link")
    team.wait_for_selector("h1:has-text('Audit report: Team Dora')")
    assert team.locator("#metric-auroc td").first.inner_text() != "—"
    assert team.locator("div.plot svg").count() == 2  # ROC and reliability diagram
    assert team.locator("table.subgroup[data-attribute='sex'] tr.suppressed").count() >= 1
    assert "4/5" in team.locator("#q-intended_use").inner_text()
    assert "Clear and specific." in team.locator("#q-intended_use").inner_text()
    assert a11y.problems(team) == []  # the report, its tables and plots
    shot(team, "audit-03-report")
    pdf = team.request.get(f"{audit}/report.pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf.body())).pages)
    assert "AUROC" in text and "Clear and specific." in text and "Released" in text
