"""The evidence trail's download beside the manifest: read by whoever reads the manifest, and what
``assay audit verify --trail`` accepts against it."""

from __future__ import annotations

import json

import pytest

from assay.evidence.manifest import check_manifest
from tests.factories import make_user

from .audit_world import client_for, released

pytestmark = pytest.mark.django_db


def url(sub, tail: str) -> str:
    return f"/submissions/{sub.pk}/audit/{tail}"


@pytest.mark.parametrize(
    ("role", "status"),
    [("team", 403), ("other_team", 404), ("stranger", 404), ("auditor", 200), ("host", 200), ("staff", 200)],
)
def test_the_unreleased_trail_is_read_by_overseers_only(audited, role, status):
    users = {
        "team": audited.alice,
        "other_team": audited.bob,
        "stranger": make_user("stranger"),
        "auditor": audited.auditor,
        "host": audited.host,
        "staff": make_user("staffer", staff=True),
    }
    assert client_for(users[role]).get(url(audited.sub_a, "trail.json")).status_code == status


def test_the_anonymous_are_sent_to_sign_in_and_posts_refused(audited):
    response = client_for(None).get(url(audited.sub_a, "trail.json"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client_for(audited.host).post(url(audited.sub_a, "trail.json")).status_code == 405


def test_once_released_the_team_downloads_a_trail_that_verifies_against_the_manifest(audited, settings):
    settings.AUDIT_SIGNING_KEY = ""
    released(audited)
    team = client_for(audited.alice)
    response = team.get(url(audited.sub_a, "trail.json"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="audit-trail-submission-{audited.sub_a.pk}.json"'
    downloaded = json.loads(response.content)
    assert downloaded["submission"] == audited.sub_a.pk
    kinds = [record["kind"] for record in downloaded["records"]]
    assert kinds[-3:] == ["reviewed", "approved", "released"] and "answers_submitted" in kinds
    manifest = json.loads(team.get(url(audited.sub_a, "manifest.json")).content)
    assert check_manifest(manifest, trail=downloaded).problems == []
    page = team.get(url(audited.sub_a, "report")).content.decode()
    assert f'href="/submissions/{audited.sub_a.pk}/audit/trail.json"' in page
