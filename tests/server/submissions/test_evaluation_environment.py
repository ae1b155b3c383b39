"""The bundle's ``evaluation_environment`` travels: config → challenge → job → worker → the script's interpreter.

Real HTTP, the real worker loop and the real sandbox; the script can only score if it runs with the older
EvalAI stack the bundle chose (numpy 1.23, where ``np.float`` still exists).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assay.server.challenges.models import Challenge
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services import jobs
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import DEMO_BUNDLE, import_published, register_team

from .test_worker_e2e import post_submission, run_worker_thread

pytestmark = pytest.mark.django_db(transaction=True)

OLD_API_MAIN = """
import numpy as np

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    version = float(".".join(np.__version__.split(".")[:2]))
    return {"result": [{"public": {"Accuracy": version, "F1": float(np.array([1.5]).astype(np.float)[0])}}]}
"""


def _import(folder: Path, host_team, extra_config: str) -> Challenge:
    config = folder / "challenge_config.yaml"
    config.write_text(config.read_text() + extra_config)
    challenge = import_published(host_team, folder)
    return challenge


def test_the_chosen_environment_reaches_the_script(live_server, media, host_team, participant, admin_user, tmp_path):
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "old-stack"))
    (folder / "evaluation_script" / "main.py").write_text(OLD_API_MAIN)
    challenge = _import(folder, host_team, "\nevaluation_environment: evalai-py3.8\n")
    assert challenge.evaluation_environment == "evalai-py3.7"  # the alias, stored by its canonical name
    register_team(challenge, participant, "Team Old")
    dev = challenge.phases.get(codename="dev")
    sid = post_submission(participant, dev, b"{}")
    assert jobs.job_payload(Submission.objects.get(pk=sid))["environment"] == "evalai-py3.7"
    _, token = create_worker_token(admin_user, "env")
    run_worker_thread(live_server.url, token, tmp_path / "w").thread.join(300)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": 1.23, "F1": 1.5}


def test_worker_python_version_chooses_the_stack_and_the_default_is_evalai_py39(media, host_team, tmp_path):
    by_worker = _import(Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "a")), host_team, "\nworker_python_version: 3.7\n")
    assert by_worker.evaluation_environment == "evalai-py3.7"
    plain = _import(Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "b")), host_team, "\ntitle: Another demo\n")
    assert plain.evaluation_environment == "evalai-py3.9"
