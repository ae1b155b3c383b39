"""Per-case rows end to end over both worker transports: a script returns ``cases``, the real worker loop
reports them as their own part, the server stores them apart from the output and serves them, joined
with the phase's hidden case metadata, to the challenge's hosts and never to the team."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from assay.server.submissions.models import Submission, SubmissionCases
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import DEMO_BUNDLE, import_published, register_team

from .test_worker_e2e import PERFECT, api_for, post_submission, run_worker_thread, transport  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

CASES_MAIN = """
import json
from .metrics import accuracy, f1_positive

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(test_annotation_file) as fh:
        truth = json.load(fh)["public"]
    with open(user_submission_file) as fh:
        predicted = {k: int(v) for k, v in json.load(fh).items()}
    cases = [
        {"case_id": key, "reference": label, "prediction": predicted.get(key), "sex": "chosen by the team"}
        for key, label in sorted(truth.items())
    ]
    result = [{"public": {"Accuracy": accuracy(truth, predicted), "F1": f1_positive(truth, predicted)}}]
    return {"result": result, "cases": cases}
"""


@pytest.fixture
def cases_challenge(media, host_team, tmp_path):
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "cases"))
    (folder / "evaluation_script" / "main.py").write_text(CASES_MAIN)
    (folder / "annotations" / "cases.csv").write_text("case_id,sex\ndev-a0,F\ndev-a1,M\n")
    config_path = folder / "challenge_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    for phase in config["challenge_phases"]:
        phase["case_metadata_file"] = "annotations/cases.csv"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return import_published(host_team, folder)


def test_cases_travel_apart_from_the_output(
    live_server,
    cases_challenge,
    participant,
    host,
    admin_user,
    tmp_path,
    transport,  # noqa: F811
) -> None:
    register_team(cases_challenge, participant, "Team Alice")
    dev = cases_challenge.phases.get(codename="dev")
    sid = post_submission(participant, dev, PERFECT.read_bytes())
    _, token = create_worker_token(admin_user, "e2e")
    run_worker_thread(live_server.url, token, tmp_path / "w", transport=transport).thread.join(120)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    assert "cases" not in sub.output
    stored = SubmissionCases.objects.get(submission=sub)
    assert stored.count > 2 and stored.columns == ["case_id", "reference", "prediction", "sex"]

    body = api_for(host).get(f"/api/v1/submissions/{sid}/cases?page_size=200").json()
    assert body["count"] == stored.count
    by_id = {row["case_id"]: row for row in body["results"]}
    assert by_id["dev-a0"]["sex"] == "F" and by_id["dev-a1"]["sex"] == "M"  # the host's, not the team's
    assert all(row["reference"] == row["prediction"] for row in body["results"])  # the perfect submission
    assert api_for(participant).get(f"/api/v1/submissions/{sid}/cases").status_code == 403
