"""The phase key case_metadata_file on import: the CSV is stored with its sha256 in
``ChallengePhase.case_metadata`` for the server's joins, never put in a worker's job, and cleared when
the key goes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from assay.bundle import read_bundle
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.submissions.services import jobs, queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import DEMO_BUNDLE, register_team, upload

pytestmark = pytest.mark.django_db

CSV = b"case_id,age_band,sex\ndev-a0,40-60,F\n"


def _bundle(tmp_path: Path, metadata: bool) -> Path:
    folder = tmp_path / ("with" if metadata else "without")
    shutil.copytree(DEMO_BUNDLE, folder)
    config_path = folder / "challenge_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    for phase in config["challenge_phases"]:
        if metadata:
            phase["case_metadata_file"] = "annotations/cases.csv"
    (folder / "annotations" / "cases.csv").write_bytes(CSV)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _import(folder: Path, host_team, challenge=None):
    with read_bundle(folder) as bundle:
        return import_bundle(bundle, host_team=host_team, challenge=challenge).challenge


def test_the_metadata_is_stored_and_never_sent_to_workers(tmp_path, host_team, participant, media) -> None:
    challenge = _import(_bundle(tmp_path, True), host_team)
    challenge.approved_by_admin = challenge.published = True
    challenge.save()
    phase = challenge.phases.get(codename="dev")
    assert phase.case_metadata.name.startswith("case_metadata/")
    assert phase.case_metadata.read() == CSV
    assert phase.case_metadata_sha256 == hashlib.sha256(CSV).hexdigest()

    register_team(challenge, participant, "Team Alice")
    sub = submit(participant, phase, upload(), "preds.json", SubmissionFields())
    token = create_worker_token(None, "w")[0]
    held = queue.claim_next(token, "w1")
    assert held is not None and held.pk == sub.pk
    payload = json.dumps(jobs.job_payload(held))
    assert phase.case_metadata_sha256 not in payload and "case_metadata" not in payload
    assert jobs.file_for_worker(token, phase.case_metadata_sha256) is None  # not even by its hash

    again = _import(_bundle(tmp_path, False), host_team, challenge)
    phase = again.phases.get(codename="dev")
    assert not phase.case_metadata and phase.case_metadata_sha256 == ""
