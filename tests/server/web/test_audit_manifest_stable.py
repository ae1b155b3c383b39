"""The manifest is the same document on every download: made as of the trail's head (its ``created_at`` is
that record's time), kept at release, and handed out unchanged afterwards — on the web and on /api/v1 —
while its signature and its trail head keep verifying against the trail as it grows."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

import assay
from assay.evidence import signing
from assay.evidence.manifest import check_manifest
from assay.server.audits.models import Release, TrailRecord
from assay.server.audits.services import release, trail
from assay.server.challenges.models import ChallengePhase

from .audit_world import client_for, released

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(settings, tmp_path):
    key = signing.generate_key()
    (tmp_path / "key.pem").write_bytes(signing.private_pem(key))
    settings.AUDIT_SIGNING_KEY = str(tmp_path / "key.pem")
    return key


def web(user, sub) -> bytes:
    response = client_for(user).get(f"/submissions/{sub.pk}/audit/manifest.json")
    assert response.status_code == 200
    return response.content


def api(user, sub) -> bytes:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/submissions/{sub.pk}/audit/manifest")
    assert response.status_code == 200
    return response.content


def test_two_downloads_of_a_released_audit_are_the_same_bytes(audited, key):
    released(audited)
    sub = audited.sub_a
    first = web(audited.alice, sub)
    assert web(audited.alice, sub) == first and web(audited.host, sub) == first
    assert api(audited.alice, sub) == api(audited.alice, sub)
    assert json.loads(api(audited.alice, sub)) == json.loads(first)
    manifest = json.loads(first)
    head = TrailRecord.objects.filter(submission=sub).order_by("-seq").first()
    assert head.kind == "released"  # made at release: the release is the last event it names
    assert manifest["trail"] == {"head": head.hash, "length": head.seq}
    assert manifest["created_at"] == trail.as_record(head)["at"]
    assert Release.objects.get(submission=sub).manifest == manifest


def test_what_was_released_stays_what_readers_get(audited, key, monkeypatch):
    released(audited)
    sub = audited.sub_a
    before = web(audited.host, sub)
    # what a rebuild would read changes: the trail grows, the phase's settings change, Assay is upgraded
    trail.append(sub, "answered", "alice", {"answers_sha256": "2" * 64})
    ChallengePhase.objects.filter(pk=sub.phase_id).update(audit={"task": "binary", "threshold": 0.9})
    monkeypatch.setattr(assay, "__version__", "99.0")
    release.retract(audited.host, sub, "A wrong threshold.")
    assert web(audited.host, sub) == before  # the overseers still read the manifest that was released
    page = client_for(audited.host).get(f"/submissions/{sub.pk}/audit/report").content.decode()
    assert json.loads(before)["trail"]["head"] in page  # and the report shows it
    records = json.loads(client_for(audited.host).get(f"/submissions/{sub.pk}/audit/trail.json").content)
    report = check_manifest(json.loads(before), trail=records, public_key=key.public_key())
    assert report.problems == []
    assert any("(2 recorded since)" in line for line in report.verified)


def test_an_unreleased_manifest_is_stable_until_the_trail_grows(audited, key):
    sub = audited.sub_a
    first = web(audited.host, sub)
    assert web(audited.auditor, sub) == first
    head = TrailRecord.objects.filter(submission=sub).order_by("-seq").first()
    assert json.loads(first)["created_at"] == trail.as_record(head)["at"]
    later = trail.append(sub, "answered", "alice", {"answers_sha256": "3" * 64})
    second = json.loads(web(audited.host, sub))
    assert second["trail"]["head"] == later.hash and second["created_at"] == trail.as_record(later)["at"]
    assert check_manifest(second, trail=trail.export(sub), public_key=key.public_key()).problems == []


def test_a_release_made_before_manifests_were_kept_is_built_on_request(audited, key):
    released(audited)
    sub = audited.sub_a
    Release.objects.filter(submission=sub).update(manifest=None)
    first = web(audited.alice, sub)
    assert web(audited.alice, sub) == first
    assert check_manifest(json.loads(first), trail=trail.export(sub), public_key=key.public_key()).problems == []
