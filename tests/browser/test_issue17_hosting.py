"""Issue 17's host features in Chromium at desktop (1366×900) and phone (390×844) width: editing the challenge's
texts, dates and a phase without a bundle, and a re-run that evaluates the same submission again."""

from __future__ import annotations

import pytest
from django.utils import timezone

from .conftest import DEMO_SUBMISSIONS, make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request) -> dict:
    return request.param


def _tag(viewport: dict) -> str:
    return "phone" if viewport is PHONE else "desktop"


def test_host_edits_texts_dates_and_a_phase(new_page, demo, viewport):
    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/")
    page.click("nav.subtabs >> text=Texts & phases")
    page.wait_for_selector("h2:has-text('Title, texts and dates')")
    page.fill("#id_texts-title", "Spot the Even Numbers, edited")
    page.fill("#id_texts-end_date", "2098-12-31 23:59:59")
    page.fill("#id_texts-description", "<p>A new overview with <b>bold</b> words.</p><script>alert(1)</script>")
    page.click("text=Save texts and dates")
    assert "changed: Title, End date (UTC), Overview" in page.wait_for_selector(".messages .success").inner_text()
    demo.refresh_from_db()
    assert demo.end_date.strftime("%Y-%m-%d %H:%M:%S") == "2098-12-31 23:59:59"

    phase = demo.phases.get(codename="dev")
    form = page.locator(f"#phase-{phase.pk} form.settings")
    form.locator(f"#id_edit-phase-{phase.pk}-allowed_submission_file_types").fill(" , ")
    form.locator("button[type=submit]").click()
    error = page.wait_for_selector(f"#phase-{phase.pk} .errorlist").inner_text()
    assert "lists no extension" in error  # the bundle's own rule, under its field
    form = page.locator(f"#phase-{phase.pk} form.settings")
    form.locator(f"#id_edit-phase-{phase.pk}-allowed_submission_file_types").fill(".json, .csv")
    form.locator(f"#id_edit-phase-{phase.pk}-name").fill("Warm-up")
    form.locator(f"#id_edit-phase-{phase.pk}-max_submissions_per_day").fill("4")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".messages .success")
    shot(page, f"h17-host-edit-{_tag(viewport)}")
    phase.refresh_from_db()
    assert (phase.name, phase.max_submissions_per_day, phase.allowed_submission_file_types) == (
        "Warm-up",
        4,
        ".json, .csv",
    )

    page.goto(f"/challenges/{demo.pk}/")
    assert "Spot the Even Numbers, edited" in page.inner_text("h1")
    assert page.locator("b:has-text('bold')").count() == 1 and page.locator("script:has-text('alert(1)')").count() == 0
    page.goto(f"/challenges/{demo.pk}/phases")
    assert "Warm-up" in page.inner_text("main")


def test_host_reruns_the_same_submission_and_the_team_is_told(new_page, demo, viewport):
    from assay.server.challenges.models import Participation
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.services import create_participant_team
    from tests.factories import finish

    dave = make_user("dave", "dave@lab.example")
    team = create_participant_team(dave, "Team Dave")
    Participation.objects.create(challenge=demo, team=team, terms_accepted_by=dave, terms_accepted_at=timezone.now())
    with open(DEMO_SUBMISSIONS / "dev_all_even.json", "rb") as fh:
        sub = finish(submit(dave, demo.phases.get(codename="dev"), fh, "dev_all_even.json", SubmissionFields()))

    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/submissions")
    page.click(f"#host-submission-{sub.pk} >> a:has-text('{sub.pk}')")
    page.wait_for_selector("h3:has-text('Evaluations')")
    page.click("#rerun-button")
    page.wait_for_selector("h1:has-text('Re-run')")
    assert "kept in its history" in page.inner_text("#confirm-form")
    page.click("#confirm-button")
    page.wait_for_selector(".messages .success")
    assert Submission.objects.count() == 1 and Submission.objects.get(pk=sub.pk).status == "submitted"
    finish(Submission.objects.get(pk=sub.pk), {"result": [{"public": {"Accuracy": 0.25, "F1": 0.5}}]})
    page.goto(f"/challenges/{demo.pk}/host/submissions/{sub.pk}")
    rows = page.locator("#evaluations tbody tr")
    assert rows.count() == 2
    assert f"by {demo.host_team.created_by.username} on" in rows.nth(0).inner_text()
    assert "current" in rows.nth(1).inner_text() and "0.2500" in rows.nth(1).inner_text()
    shot(page, f"h17-host-evaluations-{_tag(viewport)}")

    participant = new_page(viewport=viewport)
    sign_in(participant, "dave")
    participant.goto(f"/challenges/{demo.pk}/submissions")
    row = participant.locator(f"#submission-{sub.pk}")
    assert "Re-run by the hosts on" in row.inner_text()
    assert participant.locator("#submission-rows tr[id^=submission-]").count() == 1  # no copy as #2
    shot(participant, f"h17-participant-rerun-note-{_tag(viewport)}")
