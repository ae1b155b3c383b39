"""``assay host challenge create`` with a real EvalAI-Starters repository folder, over HTTP to a live server.

The CLI zips the folder as it is; the repository has ``evaluation_script/`` and no
``evaluation_script.zip``. The server builds the script from the folder and says so.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from assay.bundle import read_bundle
from assay.server.challenges.models import Challenge
from tests import corpus
from tests.cli.test_client import run  # noqa: F401  (the CLI runner fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_host_creates_a_challenge_from_a_starter_repository_folder(live_server, world, users, run):  # noqa: F811
    repo = corpus.need(corpus.BUNDLES) / "affective-visdial"
    run("login", "--server", live_server.url, "-u", "host1", "--password", "pw")
    team = world["host_team"]
    out = run("host", "challenge", "create", str(repo), "--host-team", str(team.pk))
    text = " ".join(out.split())
    assert "created" in text and "is zipped in its place" in text and "(evaluation_script_folder_zipped)" in text
    challenge_id = int(text.split("(id ")[1].split(")")[0])
    with read_bundle(repo) as bundle:
        expected = hashlib.sha256(bundle.evaluation_script.data).hexdigest()
    assert Challenge.objects.get(pk=challenge_id).evaluation_script_sha256 == expected
    report = json.loads(run("host", "challenge", "update", str(challenge_id), str(repo), "--json"))
    assert not report["created"] and "evaluation_script_folder_zipped" in {w["code"] for w in report["warnings"]}
    assert Challenge.objects.get(pk=challenge_id).evaluation_script_sha256 == expected
