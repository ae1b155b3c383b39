"""Issue 17's web rough edges, each seen in Chromium at desktop (1366×900) and phone (390×844) width:
dates in UTC with seconds, destructive actions that ask first, no offer that can only fail, a hidden
resume button, chart axes, a cancel that came too late, messages for people, favicon, empty rows, logs,
invitations, the login link, the phone layout and the admin's approval."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from .conftest import DEMO_SUBMISSIONS, EVALUATION_TIMEOUT_MS, make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def viewport(request) -> dict:
    return request.param


@pytest.fixture
def dave(demo):
    """A participant whose team takes part in the demo challenge."""
    from assay.server.challenges.models import Participation
    from assay.server.teams.services import create_participant_team

    user = make_user("dave", "dave@lab.example")
    team = create_participant_team(user, "Team Dave")
    Participation.objects.create(challenge=demo, team=team, terms_accepted_by=user, terms_accepted_at=timezone.now())
    return user


def _submit(user, demo, codename: str = "dev", name: str = "dev_all_even.json"):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    with open(DEMO_SUBMISSIONS / name, "rb") as fh:
        return submit(user, demo.phases.get(codename=codename), fh, name, SubmissionFields())


def _tag(viewport: dict) -> str:
    return "phone" if viewport is PHONE else "desktop"


def test_end_date_keeps_its_seconds_and_says_utc(new_page, demo, viewport):
    from assay.server.challenges.models import Challenge

    end = timezone.now().replace(month=12, day=31, hour=23, minute=59, second=59, microsecond=0)
    Challenge.objects.filter(pk=demo.pk).update(end_date=end + timezone.timedelta(days=365))
    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/")
    field = page.locator("#id_challenge-end_date")
    assert field.get_attribute("type") == "text"
    assert re.fullmatch(r"\d{4}-12-31 23:59:59", field.input_value())
    assert "UTC" in page.inner_text("label[for=id_challenge-end_date]")
    page.click("text=Save challenge settings")
    page.wait_for_selector(".messages .success")
    demo.refresh_from_db()
    assert (demo.end_date.hour, demo.end_date.minute, demo.end_date.second) == (23, 59, 59)
    shot(page, f"h12-settings-dates-{_tag(viewport)}")


def test_host_rerun_asks_first_and_going_back_changes_nothing(new_page, demo, dave, viewport):
    from assay.server.submissions.models import Submission

    sub = _submit(dave, demo)
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/submissions")
    row = page.locator(f"#host-submission-{sub.pk}")
    assert "Development" in row.inner_text() and "dev\n" not in row.inner_text()  # the phase's name
    row.locator("button:has-text('Re-run')").click()
    page.wait_for_selector("h1:has-text('Re-run')")
    shot(page, f"h12-confirm-rerun-{_tag(viewport)}")
    page.click("#confirm-back")
    page.wait_for_selector(f"#host-submission-{sub.pk}")
    assert Submission.objects.count() == 1 and Submission.objects.get(pk=sub.pk).status == "finished"

    page.click("text=Re-run all finished and failed")
    page.wait_for_selector("h1:has-text('Re-run every finished and failed submission')")
    page.click("#confirm-button")
    message = page.wait_for_selector(".messages .success").inner_text()
    assert "queued for evaluation again" in message, message
    assert Submission.objects.filter(status="submitted").count() == 1


def test_leaving_a_challenge_asks_first_even_without_javascript(browser, live_server, demo, dave, viewport):
    from assay.server.challenges.models import Participation

    context = browser.new_context(base_url=live_server.url, viewport=viewport, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "dave")
        page.goto(f"/challenges/{demo.pk}/participate")
        page.click("form[action$='/withdraw'] button")
        page.wait_for_selector("h1:has-text('Leave')")
        assert Participation.objects.filter(challenge=demo).exists()
        page.click("#confirm-button")
        assert "has left" in page.inner_text(".messages")
        assert not Participation.objects.filter(challenge=demo).exists()
    finally:
        context.close()


def test_a_phase_that_keeps_entries_public_offers_no_way_to_hide_them(new_page, demo, dave, viewport):
    from assay.server.submissions.models import Submission

    dev = demo.phases.get(codename="dev")
    assert dev.is_submission_public and dev.leaderboard_public
    sub = _submit(dave, demo)
    Submission.objects.filter(pk=sub.pk).update(status="finished", is_public=True)
    page = new_page(viewport=viewport)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/submit?phase={dev.pk}")
    assert page.locator("#is_public").count() == 0
    assert page.is_visible("#always-public")
    assert not page.is_visible("#resume-button")  # hidden until an upload breaks off
    page.evaluate("document.getElementById('resume-button').hidden = false")  # as after a dropped upload
    page.click("#resume-button")
    assert "Choose the same file again" in page.inner_text("#upload-message")  # not a silent no-op
    page.goto(f"/challenges/{demo.pk}/submissions?phase={dev.pk}")
    row = page.locator(f"#submission-{sub.pk}")
    assert "Make private" not in row.inner_text()
    test_phase = demo.phases.get(codename="test")
    page.goto(f"/challenges/{demo.pk}/submit?phase={test_phase.pk}")
    assert page.locator("#is_public").count() == 1  # the test phase lets the team choose


def test_a_cancel_that_comes_too_late_says_the_evaluation_had_started(new_page, demo, dave, viewport):
    from assay.server.submissions.models import Submission

    sub = _submit(dave, demo)
    page = new_page(viewport=viewport)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/submissions")
    cancel = page.locator(f"#submission-{sub.pk} button:has-text('Cancel')")
    Submission.objects.filter(pk=sub.pk).update(status="running")  # a worker claims it meanwhile
    cancel.click()
    warning = page.wait_for_selector(".messages .warning").inner_text()
    assert "already started" in warning and "runs to the end" in warning, warning
    assert page.get_attribute(f"#submission-{sub.pk}", "data-status") == "running"
    assert Submission.objects.get(pk=sub.pk).status == "running"
    shot(page, f"h12-cancel-too-late-{_tag(viewport)}")


def test_host_messages_and_the_baseline_badge_read_as_sentences(new_page, demo, dave, viewport):
    from assay.server.submissions.models import Submission

    sub = _submit(dave, demo)
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/submissions")
    page.click(f"#host-submission-{sub.pk} button:has-text('Baseline')")
    message = page.wait_for_selector(".messages .success").inner_text()
    assert message.startswith(f"Submission {sub.pk} (Team Dave #1) is now a baseline"), message
    assert "done" not in message
    assert page.locator(f"#host-submission-{sub.pk} .badge:has-text('baseline')").count() == 1


def test_favicon_and_no_failed_requests_on_first_load(new_page, demo, viewport):
    page = new_page(viewport=viewport)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto("/")
    icon = page.get_attribute("link[rel=icon]", "href")
    assert icon and page.request.get(icon).status == 200
    page.wait_for_load_state("networkidle")
    assert failed == []


def test_the_empty_leaderboard_row_spans_every_column(new_page, demo, viewport):
    from assay.server.challenges.models import ChallengePhaseSplit

    ps = ChallengePhaseSplit.objects.filter(phase__challenge=demo, visibility=3).first()
    ChallengePhaseSplit.objects.filter(pk=ps.pk).update(show_execution_time=True)
    page = new_page(viewport=viewport)
    page.goto(f"/challenges/{demo.pk}/leaderboard?split={ps.pk}")
    columns = page.locator("#leaderboard thead th").count()
    assert page.get_attribute("#leaderboard tbody td", "colspan") == str(columns)


def test_logs_name_no_server_folders_and_an_empty_one_says_so(new_page, demo, dave, viewport):
    from django.core.files.base import ContentFile

    from assay.server.submissions.models import Submission

    sub = _submit(dave, demo)
    sub.stderr_file.save("stderr.txt", ContentFile(b""), save=False)
    sub.stdout_file.save("stdout.txt", ContentFile(b'File "/srv/assay/worker/job-1/evaluation_script/main.py", line 3'))
    Submission.objects.filter(pk=sub.pk).update(status="failed")
    page = new_page(viewport=viewport)
    sign_in(page, "dave")
    page.goto(f"/submissions/{sub.pk}/files/stderr")
    assert "The evaluation wrote nothing to stderr." in page.inner_text("body")
    page.goto(f"/submissions/{sub.pk}/files/stdout")
    text = page.inner_text("body")
    assert "main.py" in text and "/srv/assay" not in text, text


def test_an_invitation_into_a_second_team_of_a_challenge_says_what_to_do(new_page, demo, dave, viewport):
    from assay.server.challenges.models import Participation
    from assay.server.teams.services import create_participant_team, invite

    erin = make_user("erin", "erin@lab.example")
    other = create_participant_team(erin, "Team Erin")
    Participation.objects.create(challenge=demo, team=other, terms_accepted_by=erin)
    from assay.server.teams.models import ParticipantTeam

    _, token = invite(dave, ParticipantTeam.objects.get(name="Team Dave"), "erin@lab.example")
    page = new_page(viewport=viewport)
    sign_in(page, "erin")
    page.goto(f"/invitations/{token}")
    page.click("button:has-text('Accept and join')")
    error = page.wait_for_selector(".messages .error").inner_text()
    assert "Team Erin" in error
    advice = page.inner_text(".messages .info")
    assert "first leave the other team" in advice and "UTC" in advice


def test_the_login_page_links_to_itself_without_nesting_next(new_page, demo, viewport):
    page = new_page(viewport=viewport)
    page.goto(f"/challenges/{demo.pk}/")
    page.click("header >> text=Sign in")
    page.wait_for_url("**/accounts/login/**")
    first = page.url
    page.click("header >> text=Sign in")
    page.wait_for_load_state()
    assert page.url == first
    assert page.url.count("next") == 1


def test_a_new_challenge_says_it_waits_for_approval_and_an_admin_approves_it_from_the_list(
    new_page, demo, tmp_path, viewport
):
    from assay.server.challenges.models import Challenge

    from .test_journeys import _zip

    page = new_page(viewport=viewport)
    sign_in(page, demo.host_team.created_by.username)
    page.goto("/host/challenges/new")
    page.set_input_files("input[name=bundle]", str(_zip(tmp_path, "new.zip", broken=False)))
    page.click("text=Upload and create")
    note = page.wait_for_selector(".messages .warning").inner_text()
    assert "waits for an administrator's approval" in note
    created = Challenge.objects.exclude(pk=demo.pk).get()
    page.goto("/host/")
    state = page.inner_text(f"tr:has(a[href='/challenges/{created.pk}/host/'])")
    assert "waiting for an administrator's approval" in state, state

    make_user("root", "root@assay.example", staff=True)
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="root").update(is_superuser=True)
    admin = new_page(viewport=viewport)
    sign_in(admin, "root")
    admin.goto("/admin/")
    headings = [h.strip().lower() for h in admin.locator("caption, h2").all_inner_texts()]
    assert headings.count("accounts") == 1, headings
    assert "Leaderboard entries" in admin.inner_text("body")
    admin.goto("/admin/challenges/challenge/")
    admin.check(f"input[name=_selected_action][value='{created.pk}']")
    admin.select_option("select[name=action]", "approve")
    admin.click("button[name=index]")
    assert "Approved:" in admin.inner_text(".messagelist")
    created.refresh_from_db()
    assert created.approved_by_admin


def test_phone_tabs_all_on_screen(new_page, demo, dave):
    page = new_page(viewport=PHONE)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/")
    for name in ("Submit", "My submissions"):
        box = page.locator("nav.tabs a", has_text=name).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "h12-phone-tabs")


def test_chart_axis_stays_within_the_scores_and_its_labels_are_readable(new_page, demo, dave, worker, viewport):
    from assay.server.challenges.models import ChallengePhaseSplit

    sub = _submit(dave, demo, name="dev_perfect.json")
    ps = ChallengePhaseSplit.objects.get(phase=sub.phase, visibility=3)
    page = new_page(viewport=viewport)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/submissions")
    page.wait_for_selector(f"#submission-{sub.pk}[data-status=finished]", timeout=EVALUATION_TIMEOUT_MS)
    assert "is queued" not in page.inner_text("main")
    page.goto(f"/challenges/{demo.pk}/leaderboard?split={ps.pk}")
    ticks = page.locator("svg.chart text.tick").all_text_contents()
    values = [float(t) for t in ticks if re.fullmatch(r"-?\d+(\.\d+)?", t)]
    assert values and min(values) >= 0 and max(values) <= 1, ticks
    dates = [t for t in ticks if not re.fullmatch(r"-?\d+(\.\d+)?", t)]
    assert len(set(dates)) == 2 and dates[-1].endswith("UTC"), dates
    height = page.locator("svg.chart text.tick").first.bounding_box()["height"]
    assert height >= 9, height  # rendered px, at either width
    shot(page, f"h12-chart-{_tag(viewport)}")


def test_phone_my_submissions_are_cards_with_status_and_actions_on_screen(new_page, demo, dave):
    sub = _submit(dave, demo)
    page = new_page(viewport=PHONE)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/submissions")
    for label in ("Status", "Actions"):
        box = page.locator(f"#submission-{sub.pk} td[data-label='{label}']").bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"], (label, box)
    cancel = page.locator(f"#submission-{sub.pk} button:has-text('Cancel')").bounding_box()
    assert cancel["x"] + cancel["width"] <= PHONE["width"]
    assert page.evaluate("document.querySelector('#my-submissions').parentElement.scrollWidth") <= PHONE["width"]
    shot(page, "h12-phone-my-submissions")


def test_the_received_note_goes_once_the_submission_is_done(new_page, demo, dave, viewport):
    from assay.server.submissions.models import Submission

    page = new_page(viewport=viewport)
    sign_in(page, "dave")
    page.goto(f"/challenges/{demo.pk}/submit")
    page.set_input_files("#input_file", str(DEMO_SUBMISSIONS / "dev_all_even.json"))
    page.click("#submit-button")
    note = page.wait_for_selector("#submission-received").inner_text()
    assert "was received (dev_all_even.json)" in note and "is queued" not in note, note
    Submission.objects.filter(participant_team__name="Team Dave").update(status="finished")  # as a worker would
    page.wait_for_selector("#submission-rows tr[data-status=finished]")
    page.wait_for_selector("#submission-received", state="detached")


def test_phone_host_submissions_are_cards_with_every_action_on_screen(new_page, demo, dave):
    sub = _submit(dave, demo)
    page = new_page(viewport=PHONE)
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/submissions")
    for button in page.locator(f"#host-submission-{sub.pk} td[data-label='Actions'] button").all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("document.querySelector('#host-submissions').parentElement.scrollWidth") <= PHONE["width"]
    shot(page, "h12-phone-host-submissions")
