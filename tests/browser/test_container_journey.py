"""A participant submits a container image in a real browser: the demo's container challenge, its
``docker save`` tarball through the submit page's resumable upload, the worker running it on Docker, and
the score on the leaderboard."""

from __future__ import annotations

import pytest
from django.utils import timezone

from .conftest import DEMO_BUNDLE, EVALUATION_TIMEOUT_MS, make_user, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTAINER_BUNDLE = DEMO_BUNDLE.parent / "demo-container-challenge"


@pytest.fixture
def container_demo(transactional_db):
    """The demo container challenge, published, with the team of ``dora`` registered (terms accepted)."""
    from assay.bundle import read_bundle
    from assay.server.challenges.models import Challenge, Participation
    from assay.server.challenges.services.bundle_import import import_bundle
    from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
    from assay.server.teams.services import create_host_team

    host = make_user("cargo", "cargo@hosts.example")
    with read_bundle(str(CONTAINER_BUNDLE)) as bundle:
        challenge = import_bundle(bundle, host_team=create_host_team("Container hosts", host), user=host).challenge
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    dora = make_user("dora", "dora@uni.example")
    team = ParticipantTeam.objects.create(name="Team Dora", created_by=dora)
    ParticipantTeamMember.objects.create(team=team, user=dora)
    Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=timezone.now())
    return challenge


@pytest.fixture
def predictor_tarball(tmp_path):
    from assay.server.demo import build_predictor_tarball
    from tests.containers.conftest import ensure_dockerd

    client = ensure_dockerd()
    return build_predictor_tarball(client, CONTAINER_BUNDLE / "participant" / "predict.sh", tmp_path / "image.tar")[1]


def test_a_participant_uploads_an_image_and_sees_its_score(new_page, container_demo, predictor_tarball, worker):
    page = new_page()
    sign_in(page, "dora")
    page.goto(f"/challenges/{container_demo.pk}/submit")
    assert "docker save IMAGE -o image.tar" in page.inner_text("main")
    page.set_input_files("#input_file", str(predictor_tarball))
    shot(page, "container-01-submit")
    page.click("#submit-button")
    page.wait_for_url(f"**/challenges/{container_demo.pk}/submissions?phase=*")
    page.wait_for_selector("#submission-rows tr[data-status=finished]", timeout=EVALUATION_TIMEOUT_MS)
    rows = page.inner_text("#submission-rows")
    assert "Accuracy 1" in rows and "sha256:" in rows  # the score, and the digest of the image that ran
    shot(page, "container-02-finished")
    page.click("nav.tabs >> text=Leaderboard")
    assert "Team Dora" in page.wait_for_selector("#leaderboard").inner_text()
