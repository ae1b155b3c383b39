"""The main pages of the web UI, each with the role that sees it, and the site they are seen on: the demo
challenge with a participant (two scored submissions, both audited), its host, an auditor and an admin, and
a data package of the host team that the audited phase pins. The accessibility test checks these pages and
``make screenshots`` photographs them (tests/browser/screenshots.py), so both cover the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .conftest import DEMO_SUBMISSIONS, make_user, sign_in

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
PACKAGE = "even-numbers"  # tests/server/data_packages/pinning.py's package


@dataclass(frozen=True)
class MainPage:
    name: str
    role: str | None  # who is signed in: "participant", "host", "auditor", "admin", or None (anonymous)
    #: formatted with the challenge's ``pk``, its first ``team``, that team's first ``submission`` (its
    #: audit answers a draft) and ``second`` (answers under review, rated by the auditor)
    path: str
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
    MainPage("audits", "participant", "/audits/"),
    MainPage("audit-form", "participant", "/submissions/{submission}/audit"),
    MainPage("audit-review", "auditor", "/submissions/{second}/audit"),
    MainPage("audit-report", "host", "/submissions/{second}/audit/report"),
    MainPage("data-packages", "participant", "/data/"),
    MainPage("data-package", "participant", f"/data/{PACKAGE}/"),
    MainPage("data-package-owner", "host", f"/data/{PACKAGE}/"),
    MainPage("team-page", None, "/teams/{team}/"),
    MainPage("admin-challenge-list", "admin", "/"),
    MainPage("login", None, "/accounts/login/"),
    MainPage("sign-up", None, "/accounts/signup/"),
    MainPage("not-found", None, "/challenges/999999/", status=404),
]
USERNAMES = {"participant": "dora", "host": "hostess", "auditor": "audrey", "admin": "root"}


@pytest.fixture
def main_site(demo):
    """The demo challenge (host ``hostess``), participant ``dora`` in Team Dora with two scored submissions
    to its audited dev phase (the first's answers a draft, the second's under review by the auditor
    ``audrey``), the host team's data package that phase pins (dora's access request pending), and the
    superuser ``root``: every main page has something to show."""
    from django.utils import timezone

    from assay.server.challenges.models import ChallengeAuditor, Participation
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.services import create_participant_team
    from tests.factories import finish

    dora = make_user("dora", "dora@uni.example")
    team = create_participant_team(dora, "Team Dora")
    Participation.objects.create(challenge=demo, team=team, terms_accepted_by=dora, terms_accepted_at=timezone.now())
    dev = demo.phases.get(codename="dev")
    _audited(dev)
    dev.refresh_from_db()
    subs = []
    for name, method in (("dev_all_even.json", "even"), ("dev_perfect.json", "perfect")):
        with open(DEMO_SUBMISSIONS / name, "rb") as fh:
            subs.append(submit(dora, dev, fh, name, SubmissionFields(method_name=method)))
        finish(subs[-1])
        subs[-1].refresh_from_db()
    host = type(dora).objects.get(username=USERNAMES["host"])
    audrey = make_user("audrey", "audrey@audit.example")
    ChallengeAuditor.objects.create(challenge=demo, user=audrey, added_by=host)
    _answered(dora, audrey, *subs)
    _pinned_package(host, dev, dora)
    root = make_user("root", "root@assay.example", staff=True)
    root.is_superuser = True  # as the demo's admin: Django's admin pages are open to it
    root.save(update_fields=["is_superuser"])
    return demo


def _audited(phase) -> None:
    """The phase audited (binary, subgroups by sex) with the FG-AI4H questionnaire."""
    from assay.bundle.questionnaire import template
    from assay.server.audits.models import Questionnaire
    from tests.server.web.audit_world import SETTINGS

    type(phase).objects.filter(pk=phase.pk).update(audit=SETTINGS)
    schema = template("fg-ai4h-v1")
    Questionnaire.objects.create(
        challenge=phase.challenge, version=schema.version, schema=schema.as_json(), sha256=schema.sha256()
    )


def _answered(participant, auditor, draft, reviewed) -> None:
    """Both submissions summarised; ``draft``'s answers half given; ``reviewed``'s (the DR template's
    sample answers) submitted, and the auditor's review started with two ratings."""
    from assay.audit.summary import summarise
    from assay.bundle.questionnaire import load_answers
    from assay.server.audits.models import AuditSummary
    from assay.server.audits.services import answers, reviews
    from tests.factories import REPO
    from tests.server.web.audit_world import SETTINGS, case_rows

    sample = load_answers((REPO / "examples" / "audit-dr-grading" / "sample" / "answers.yaml").read_bytes())
    for seed, sub in enumerate((draft, reviewed)):
        AuditSummary.objects.create(
            submission=sub,
            document=summarise(SETTINGS, case_rows(seed=seed)),
            settings_sha256="1" * 64,
            cases_sha256="2" * 64,
        )
    answers.save_draft(participant, draft, dict(list(sample.items())[: len(sample) // 2]))
    answers.save_draft(participant, reviewed, sample)
    answers.submit_answers(participant, reviewed)
    reviews.start_review(auditor, reviewed)
    first, second = list(sample)[:2]
    ratings = {first: {"rating": 4, "comment": "Clear."}, second: {"rating": 2, "comment": "Say which population."}}
    reviews.rate(auditor, reviewed, 1, ratings, "Mostly sound.")


def _pinned_package(host, phase, reader) -> None:
    """The host team's package (version 1 from the demo's dev labels) pinned by the phase, as the bundle
    import pins it; ``reader`` asked for access and waits."""
    from assay.server.challenges.services.package_pins import Pin
    from assay.server.data_packages.services import access_requests
    from tests.server.data_packages.pinning import labels_version, package

    version = labels_version(host, package(host, phase.challenge.host_team, slug=PACKAGE))
    files = {"annotations": version.files.get(path="labels/dev.json")}
    type(phase).objects.filter(pk=phase.pk).update(**Pin(version, files).phase_values())
    access_requests.request_access(reader, version.package, "To check my grader against the test set.")


def open_page(new_page, challenge, page: MainPage, viewport: dict):
    """A fresh browser context at ``viewport``, signed in as the page's role, showing the page."""
    browser_page = new_page(viewport)
    if page.role is not None:
        sign_in(browser_page, USERNAMES[page.role])
    participation = challenge.participations.order_by("id").first()
    team = participation.team_id if participation else 0
    subs = list(participation.team.submissions.order_by("id").values_list("pk", flat=True)[:2]) if participation else []
    subs += [0] * (2 - len(subs))
    response = browser_page.goto(page.path.format(pk=challenge.pk, team=team, submission=subs[0], second=subs[1]))
    assert response is not None and response.status == page.status, f"{page.name}: {response and response.status}"
    browser_page.wait_for_load_state("networkidle")
    return browser_page
