"""The host's Texts & phases page: saves through challenges.services.editing, errors under their fields."""

from __future__ import annotations

import pytest
from django.test import Client

from assay.server.challenges.models import ChallengePhaseSplit

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_texts_saved_and_shown_cleaned(demo_challenge, host):
    c = client_for(host)
    page = c.get(f"/challenges/{demo_challenge.pk}/host/edit")
    assert page.status_code == 200
    assert b"Title, texts and dates" in page.content
    data = {
        "texts-title": "Edited on the web",
        "texts-short_description": "short",
        "texts-start_date": "2024-01-01 00:00:00",
        "texts-end_date": "2098-06-30 23:59:59",
        "texts-description": '<p id="ov">Overview <script>alert(1)</script><b>bold</b></p>',
        "texts-evaluation_details": "<p>How we score</p>",
        "texts-terms_and_conditions": "<p>Terms</p>",
        "texts-submission_guidelines": "<p>Guidelines</p>",
    }
    saved = c.post(f"/challenges/{demo_challenge.pk}/host/edit/texts", data, follow=True)
    assert b"changed: Title, Short description, End date (UTC), Overview, Evaluation," in saved.content
    demo_challenge.refresh_from_db()
    assert demo_challenge.end_date.strftime("%H:%M:%S") == "23:59:59"
    overview = c.get(f"/challenges/{demo_challenge.pk}/").content.decode()
    assert "Edited on the web" in overview and "<b>bold</b>" in overview
    assert "<script>alert(1)</script>" not in overview

    data["texts-start_date"] = "2099-01-01 00:00:00"  # after the end
    refused = c.post(f"/challenges/{demo_challenge.pk}/host/edit/texts", data)
    assert refused.status_code == 400
    assert b"start_date is after end_date" in refused.content
    data["texts-title"] = "t" * 101
    data["texts-start_date"] = "2024-01-01 00:00:00"
    refused = c.post(f"/challenges/{demo_challenge.pk}/host/edit/texts", data)
    assert refused.status_code == 400 and b"String should have at most 100 characters" in refused.content


def test_phase_saved_and_refused(demo_challenge, host):
    phase = demo_challenge.phases.get(codename="dev")
    prefix = f"edit-phase-{phase.pk}-"
    data = {
        prefix + "name": "Warm-up",
        prefix + "description": "<p>Warm up here</p>",
        prefix + "start_date": "2024-01-01 00:00:00",
        prefix + "end_date": "2098-01-01 12:00:30",
        prefix + "max_submissions_per_day": "3",
        prefix + "max_submissions_per_month": "30",
        prefix + "max_submissions": "300",
        prefix + "is_public": "on",
        prefix + "leaderboard_public": "on",
        prefix + "allowed_submission_file_types": ".json, .csv",
    }
    c = client_for(host)
    assert c.post(f"/challenges/{demo_challenge.pk}/host/edit/phases/{phase.pk}", data).status_code == 302
    phase.refresh_from_db()
    assert (phase.name, phase.max_submissions_per_day, phase.allowed_submission_file_types) == (
        "Warm-up",
        3,
        ".json, .csv",
    )
    assert b"Warm-up" in c.get(f"/challenges/{demo_challenge.pk}/phases").content
    data[prefix + "allowed_submission_file_types"] = ", ,"
    refused = c.post(f"/challenges/{demo_challenge.pk}/host/edit/phases/{phase.pk}", data)
    assert refused.status_code == 400 and b"lists no extension" in refused.content


def test_removing_a_leaderboard_asks_then_refuses_one_with_results(world, host):
    world.result("A", 0.5, 0.5, phase="test")
    used = world.ps("test", "public")
    c = client_for(host)
    url = f"/challenges/{world.challenge.pk}/host/edit/splits/{used.pk}/remove"
    asked = c.post(url)
    assert asked.status_code == 200 and b"Remove the leaderboard" in asked.content
    refused = c.post(url, {"confirmed": "yes"}, follow=True)
    assert b"has results and cannot be removed" in refused.content
    assert ChallengePhaseSplit.objects.filter(pk=used.pk).exists()
    unused = world.ps("test", "private")
    c.post(f"/challenges/{world.challenge.pk}/host/edit/splits/{unused.pk}/remove", {"confirmed": "yes"})
    assert not ChallengePhaseSplit.objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize("who", ["participant", None])
def test_others_get_404(demo_challenge, participant, who):
    c = client_for(participant if who else None)
    response = c.get(f"/challenges/{demo_challenge.pk}/host/edit")
    assert response.status_code in (404, 302)  # anonymous: to the sign-in page first
    if who:
        assert response.status_code == 404
        assert c.post(f"/challenges/{demo_challenge.pk}/host/edit/texts", {"texts-title": "x"}).status_code == 404
