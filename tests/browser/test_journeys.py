"""Whole journeys in a real browser: a participant from sign-up to the leaderboard, a host from a broken
bundle to a re-run, and a private split that a participant never sees."""

from __future__ import annotations

import re
import zipfile

import pytest
from django.utils import timezone

from .conftest import DEMO_BUNDLE, DEMO_SUBMISSIONS, EVALUATION_TIMEOUT_MS, PASSWORD, make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/")


def test_participant_signs_up_verifies_joins_submits_and_reaches_the_leaderboard(
    new_page, live_server, demo, worker, mailoutbox
):
    page = new_page()
    page.goto("/")
    shot(page, "01-challenge-list")

    # sign up, then verify the address from the e-mail in the test mailbox
    page.click("text=Sign up")
    page.fill("input[name=email]", "carol@uni.example")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shot(page, "02-sign-up")
    page.click("form button[type=submit]")
    page.wait_for_url("**/accounts/confirm-email/")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["carol@uni.example"]
    link = LINK.search(mailoutbox[0].body).group(0)
    page.goto(link.replace(re.match(r"https?://[^/]+", link).group(0), live_server.url))
    page.click("form button[type=submit]")  # "Confirm"
    page.wait_for_selector("summary:has-text('carol')")

    # a team of her own
    page.goto("/teams/")
    page.fill("input[name=name]", "Team Carol")
    page.click("text=Create team")
    page.wait_for_selector("h1:has-text('Team Carol')")
    shot(page, "03-team")

    # participate: the team, the terms (recorded on the server)
    page.goto(f"/challenges/{demo.pk}/")
    shot(page, "04-challenge-overview")
    page.click("nav.tabs >> text=Participate")
    page.check("input[name=team]")
    page.check("#accept_terms")
    shot(page, "05-participate")
    page.click("form button:has-text('Participate')")
    page.wait_for_selector("h2:has-text('Submit')")

    # submit a prediction file to the development phase through the resumable upload
    page.set_input_files("#input_file", str(DEMO_SUBMISSIONS / "dev_perfect.json"))
    page.fill("#method_name", "parity bit")
    shot(page, "06-submit")
    page.click("#submit-button")
    page.wait_for_url(f"**/challenges/{demo.pk}/submissions?phase=*")
    row = page.wait_for_selector("#submission-rows tr[data-status]")
    assert row.get_attribute("data-status") in ("submitted", "running", "finished")
    # live status: htmx polls the rows until the worker has finished
    page.wait_for_selector("#submission-rows tr[data-status=finished]", timeout=EVALUATION_TIMEOUT_MS)
    assert "Accuracy" in page.inner_text("#submission-rows")
    shot(page, "07-my-submissions")

    page.click("nav.tabs >> text=Leaderboard")
    board = page.wait_for_selector("#leaderboard")
    assert "Team Carol" in board.inner_text()
    assert page.query_selector("svg.chart") is not None
    shot(page, "08-leaderboard")

    from assay.server.challenges.models import Participation

    participation = Participation.objects.get(challenge=demo, team__name="Team Carol")
    assert participation.terms_accepted_at is not None and participation.terms_accepted_by.username == "carol"


def _zip(tmp_path, name: str, *, broken: bool):
    """The demo bundle as a zip; ``broken`` puts an unknown research domain into its config."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(DEMO_BUNDLE.rglob("*")):
            if file.is_file():
                data = file.read_bytes()
                if broken and file.name == "challenge_config.yaml":
                    data = data.replace(b"domain: TAB", b"domain: BIOLOGY")
                zf.writestr(file.relative_to(DEMO_BUNDLE).as_posix(), data)
    return path


def _wait_until_finished(page, submission_id: int) -> None:
    """The host submissions table refreshes itself (htmx) while anything is in progress."""
    page.wait_for_selector(f"#host-submission-{submission_id}[data-status=finished]", timeout=EVALUATION_TIMEOUT_MS)


def test_host_fixes_a_broken_bundle_approves_a_team_and_reruns_a_submission(new_page, demo, worker, tmp_path):
    from assay.server.challenges.models import Challenge, Participation
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.services import create_participant_team

    host = demo.host_team.created_by
    page = new_page()
    sign_in(page, host.username)

    # a broken bundle: the error names the file and the line
    page.goto("/host/challenges/new")
    page.set_input_files("input[name=bundle]", str(_zip(tmp_path, "broken.zip", broken=True)))
    page.click("text=Upload and create")
    problems = page.wait_for_selector("#bundle-problems")
    text = problems.inner_text()
    assert "challenge_config.yaml" in text and "domain" in text
    assert re.search(r"challenge_config\.yaml\s+\d+", text), text
    shot(page, "09-host-broken-bundle")

    # fixed: the challenge is created and the host lands on its settings
    page.set_input_files("input[name=bundle]", str(_zip(tmp_path, "fixed.zip", broken=False)))
    page.click("text=Upload and create")
    page.wait_for_selector("h2:has-text('Challenge settings')")
    created = Challenge.objects.exclude(pk=demo.pk).get(host_team=demo.host_team)
    assert created.domain == "TAB"
    shot(page, "10-host-settings")

    # a team waits for approval in the demo challenge; the host approves it
    dave = make_user("dave", "dave@lab.example")
    team = create_participant_team(dave, "Team Dave")
    participation = Participation.objects.create(
        challenge=demo,
        team=team,
        status=Participation.Status.PENDING,
        terms_accepted_by=dave,
        terms_accepted_at=timezone.now(),
    )
    page.goto(f"/challenges/{demo.pk}/host/participants")
    page.click(f"#participation-{participation.pk} >> text=Approve")
    page.wait_for_selector(f"#participation-{participation.pk} .badge.ok")
    shot(page, "11-host-participants")
    participation.refresh_from_db()
    assert participation.status == Participation.Status.APPROVED

    # the host re-runs Dave's evaluated submission: the same submission is evaluated again (issue 17)
    phase = demo.phases.get(codename="dev")
    with open(DEMO_SUBMISSIONS / "dev_all_even.json", "rb") as fh:
        first = submit(dave, phase, fh, "dev_all_even.json", SubmissionFields())
    page.goto(f"/challenges/{demo.pk}/host/submissions")
    page.wait_for_selector(f"#host-submission-{first.pk}")
    _wait_until_finished(page, first.pk)
    page.click(f"#host-submission-{first.pk} >> button:has-text('Re-run')")
    page.click("#confirm-button")  # destructive actions ask first
    page.wait_for_selector(".messages .success")
    shot(page, "12-host-submissions")
    _wait_until_finished(page, first.pk)
    assert page.get_attribute(f"#host-submission-{first.pk}", "data-status") == "finished"
    assert not Submission.objects.filter(participant_team=team).exclude(pk=first.pk).exists()  # no copy
    assert first.attempts.get().status == "finished"  # the earlier evaluation, kept


def test_a_private_split_is_invisible_to_a_participant(new_page, demo):
    from assay.server.challenges.models import ChallengePhaseSplit, Participation
    from assay.server.teams.services import create_participant_team

    private = ChallengePhaseSplit.objects.get(phase__challenge=demo, visibility=1)
    erin = make_user("erin", "erin@lab.example")
    team = create_participant_team(erin, "Team Erin")
    Participation.objects.create(challenge=demo, team=team, terms_accepted_by=erin)

    page = new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, "erin")
    page.goto(f"/challenges/{demo.pk}/leaderboard")
    tabs = page.inner_text("nav.subtabs")
    assert "Private split" not in tabs and "Public split" in tabs
    shot(page, "13-leaderboard-participant-phone")
    page.goto(f"/challenges/{demo.pk}/leaderboard?split={private.pk}")
    assert "Private split" not in page.inner_text("main")

    host_page = new_page()
    sign_in(host_page, demo.host_team.created_by.username)
    host_page.goto(f"/challenges/{demo.pk}/leaderboard?split={private.pk}")
    assert "Private split" in host_page.inner_text("nav.subtabs")
    assert "hosts only" in host_page.inner_text("nav.subtabs")
    shot(host_page, "14-leaderboard-host")
