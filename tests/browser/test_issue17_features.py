"""Issue 17's missing features, each seen in Chromium: a copy button for tokens, whether a worker is
online, renaming a submission's method, and one "My submissions" page across challenges."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import register_team

from .conftest import make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def erin(demo):
    """A participant of the demo challenge with one finished submission (finished: its row does not poll)."""
    from assay.server.submissions.models import Submission

    user = make_user("erin", "erin@lab.example")
    team = register_team(demo, user, "Team Erin")
    output = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}
    sub = Submission.objects.create(
        phase=demo.phases.get(codename="dev"), participant_team=team, created_by=user, status="finished", output=output
    )
    return user, sub


def test_a_new_token_is_copied_with_one_click_and_stays_selectable_without_javascript(browser, new_page, live_server):
    make_user("carol")
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, "carol")
    page.goto("/account/tokens")
    page.fill("input[name=name]", "laptop")
    page.click("form.panel button[type=submit]")
    token = page.inner_text("#new-token").strip()
    button = page.get_by_role("button", name="Copy token")
    button.click()
    page.wait_for_selector("button[data-copy='new-token']:has-text('Copied')")
    assert page.inner_text("#new-token-copied") == "Copied to the clipboard."
    assert page.evaluate("navigator.clipboard.readText()") == token
    shot(page, "feature-token-copied")
    plain = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        other = plain.new_page()
        sign_in(other, "carol")
        other.goto("/account/tokens")
        other.fill("input[name=name]", "no-js")
        other.click("form.panel button[type=submit]")
        assert other.inner_text("#new-token").startswith("ap_")
        assert not other.locator("button[data-copy='new-token']").is_visible()
    finally:
        plain.close()


def test_the_host_sees_whether_a_worker_is_online(new_page, demo):
    from assay.server.submissions.models import WorkerToken
    from assay.server.submissions.services.tokens import create_worker_token

    page = new_page()
    sign_in(page, demo.host_team.created_by.username)
    page.goto(f"/challenges/{demo.pk}/host/")
    assert "No worker has been seen" in page.inner_text("#no-workers")
    row, _ = create_worker_token(None, "gpu-box-1")
    WorkerToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    page.reload()
    assert page.locator("#no-workers").count() == 0
    assert "gpu-box-1" in page.inner_text("#workers-seen") and "idle" in page.inner_text("#workers-seen")
    shot(page, "feature-workers-online")


def test_the_team_renames_its_method_on_my_submissions(new_page, demo, erin):
    from assay.server.submissions.models import Submission

    user, sub = erin
    # one waiting submission makes the rows poll: the open form must survive the refreshes
    Submission.objects.create(phase=sub.phase, participant_team=sub.participant_team, created_by=user)
    page = new_page()
    sign_in(page, user.username)
    page.goto(f"/challenges/{demo.pk}/submissions")
    row = page.locator(f"#submission-{sub.pk}")
    row.get_by_text("Edit method").click()
    row.get_by_label("Method name").fill("ResNet with TTA")
    with page.expect_response(lambda r: "/submissions/rows" in r.url):
        pass  # a poll replaced the rows meanwhile
    page.wait_for_timeout(200)
    assert row.get_by_label("Method name").input_value() == "ResNet with TTA"
    row.get_by_label("Method description").fill("test-time augmentation")
    row.get_by_role("button", name="Save method").click()
    page.wait_for_selector("ul.messages li:has-text('new method name')")
    assert "ResNet with TTA" in page.inner_text(f"#submission-{sub.pk} .method-name")
    sub.refresh_from_db()
    assert (sub.method_name, sub.method_description) == ("ResNet with TTA", "test-time augmentation")


def test_my_submissions_across_challenges_from_the_user_menu(new_page, demo, erin):
    user, sub = erin
    page = new_page()
    sign_in(page, user.username)
    page.click(f"summary:has-text('{user.username}')")
    page.get_by_role("link", name="My submissions").first.click()
    page.wait_for_url("**/me/submissions")
    mine = page.locator(f"#mine-{sub.pk}")
    assert demo.title in mine.inner_text() and "Finished" in mine.inner_text() and "0.7500" in mine.inner_text()
    shot(page, "feature-my-submissions")
