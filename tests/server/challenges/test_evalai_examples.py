"""EvalAI's own example bundles imported as EvalAI imports them, and example3 refused as EvalAI refuses it.

example1 and example2 are what EvalAI's tests upload to its zip-upload endpoint; example4 adds a second
phase and leaderboard. Read at test time from ``../shared/corpus/evalai-bundles/evalai-examples``.
"""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit
from assay.server.challenges.services.bundle_import import import_bundle
from tests import corpus

pytestmark = pytest.mark.django_db

EXAMPLES = corpus.BUNDLES / "evalai-examples"
# bundle → (phase codenames, phase-split pairings, monthly limit of the first phase)
VALID = {
    "example1/test_zip_file.zip": (["Challenge phase codename"], 1, 1000),
    "example1/test_zip_file": (["Challenge phase codename"], 1, 1000),
    "example2/test_zip_file.zip": (["Challenge phase codename"], 1, 345),
    "example2/test_zip_file": (["Challenge phase codename"], 1, 345),
    "example4/test_zip_file.zip": (["phase1", "phase2"], 4, 1000),
    "example4/test_zip_file": (["phase1", "phase2"], 4, 1000),
}


@pytest.mark.parametrize(("path", "expected"), sorted(VALID.items()))
def test_valid_example_imports(path, expected, media, host_team):
    codenames, pairings, per_month = expected
    with read_bundle(corpus.need(EXAMPLES) / path) as bundle:
        report = import_bundle(bundle, host_team=host_team)
    assert report.warnings == []
    challenge = report.challenge
    assert challenge.title == "Challenge Title" and challenge.evaluation_script_sha256
    assert challenge.image.name  # logo.png
    phases = list(ChallengePhase.objects.filter(challenge=challenge).order_by("config_id"))
    assert [p.codename for p in phases] == codenames
    assert all(len(p.test_annotation_sha256) == 64 for p in phases)
    assert phases[0].max_submissions_per_month == per_month
    assert ChallengePhaseSplit.objects.filter(phase__challenge=challenge, visibility=3).count() == pairings


def _zip_configuration(path: str) -> io.BytesIO:
    f = io.BytesIO((corpus.need(EXAMPLES) / path).read_bytes())
    f.name = path.rsplit("/", 1)[-1]
    return f


def test_evalai_zip_upload_endpoint_takes_example1_and_example2(host, host_team, media):
    api = APIClient()
    api.force_authenticate(host)
    base = f"/api/challenges/challenge/challenge_host_team/{host_team.pk}"
    for path in ("example1/test_zip_file.zip", "example2/test_zip_file.zip"):
        r = api.post(f"{base}/zip_upload/", {"zip_configuration": _zip_configuration(path)}, format="multipart")
        assert r.status_code == 201, r.content[:2000]
    assert Challenge.objects.filter(host_team=host_team).count() == 2


def test_example3_is_refused_with_evalais_three_errors(host, host_team, media):
    with pytest.raises(BundleError):
        read_bundle(corpus.need(EXAMPLES) / "example3/incorrect_zip_file.zip")
    api = APIClient()
    api.force_authenticate(host)
    base = f"/api/challenges/challenge/challenge_host_team/{host_team.pk}"
    for endpoint in ("validate_challenge_config", "zip_upload"):
        body = {"zip_configuration": _zip_configuration("example3/incorrect_zip_file.zip")}
        r = api.post(f"{base}/{endpoint}/", body, format="multipart")
        assert r.status_code == 400, r.content[:2000]
        error = r.json()["error"]
        assert "challenge_config.yaml:18 [evaluation_script]" in error
        assert "challenge_config.yaml:23 [leaderboard.0.schema.default_order_by]" in error and "'aa'" in error
        assert "challenge_config.yaml:37 [challenge_phases.0.max_submissions_per_month]" in error
    assert not Challenge.objects.exists()
