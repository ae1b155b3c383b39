"""The main pages of the web UI, each with the role that sees it, and the site they are seen on: the demo
challenge with a participant (one scored submission), its host and an admin. The accessibility test checks
these pages and ``make screenshots`` photographs them (tests/browser/screenshots.py), so both cover the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .conftest import DEMO_SUBMISSIONS, make_user, sign_in

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@dataclass(frozen=True)
class MainPage:
    name: str
    role: str | None  # who is signed in: "participant", "host", "admin", or None (anonymous)
    path: str  # formatted with the challenge's ``pk``, its first ``team`` and that team's first ``submission``
    status: int = 200


PAGES = [
    MainPage("challenge-list", "participant", "/"),
    MainPage("challenge-overview", "participant", "/challenges/{pk}/"),
    MainPage("leaderboard", "participant", "/challenges/{pk}/leaderboard"),
    MainPage("submit", "participant", "/challenges/{pk}/submit"),
    MainPage("my-submissions", "participant", "/challenges/{pk}/submissions"),
    MainPage("tokens", "participant", "/account/tokens"),
    MainPage("host-dashboard", "host", "/host/"),
    MainPage("host-submissions", "host", "/challenges/{pk}/host/submissions"),
    MainPage("host-submission", "host", "/challenges/{pk}/host/submissions/{submission}"),
    MainPage("host-edit", "host", "/challenges/{pk}/host/edit"),
    MainPage("host-statistics", "host", "/challenges/{pk}/host/statistics"),
    MainPage("team-page", None, "/teams/{team}/"),
    MainPage("admin-challenge-list", "admin", "/"),
    MainPage("login", None, "/accounts/login/"),
    MainPage("sign-up", None, "/accounts/signup/"),
    MainPage("not-found", None, "/challenges/999999/", status=404),
]
USERNAMES = {"participant": "dora", "host": "hostess", "admin": "root"}


@pytest.fixture
def main_site(demo):
    """The demo challenge (host ``hostess``), participant ``dora`` in Team Dora with one scored submission,
    and the superuser ``root``: every main page has something to show."""
    from django.utils import timezone

    from assay.server.challenges.models import Participation
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.services import create_participant_team
    from tests.factories import finish

    dora = make_user("dora", "dora@uni.example")
    team = create_participant_team(dora, "Team Dora")
    Participation.objects.create(challenge=demo, team=team, terms_accepted_by=dora, terms_accepted_at=timezone.now())
    with open(DEMO_SUBMISSIONS / "dev_all_even.json", "rb") as fh:
        fields = SubmissionFields(method_name="even")
        sub = submit(dora, demo.phases.get(codename="dev"), fh, "dev_all_even.json", fields)
    finish(sub)
    root = make_user("root", "root@assay.example", staff=True)
    root.is_superuser = True  # as the demo's admin: Django's admin pages are open to it
    root.save(update_fields=["is_superuser"])
    return demo


def open_page(new_page, challenge, page: MainPage, viewport: dict):
    """A fresh browser context at ``viewport``, signed in as the page's role, showing the page."""
    browser_page = new_page(viewport)
    if page.role is not None:
        sign_in(browser_page, USERNAMES[page.role])
    participation = challenge.participations.order_by("id").first()
    team = participation.team_id if participation else 0
    first = participation.team.submissions.order_by("id").first() if participation else None
    response = browser_page.goto(page.path.format(pk=challenge.pk, team=team, submission=first.pk if first else 0))
    assert response is not None and response.status == page.status, f"{page.name}: {response and response.status}"
    browser_page.wait_for_load_state("networkidle")
    return browser_page
