"""Real EvalAI challenge repositories run unchanged: the leaderboard shows what EvalAI's worker would.

For every repository in ``../shared/corpus/evalai-bundles`` (read at test time, never copied into the
project) and every phase with an annotation file, the challenge is created from the repository folder as
it is — the only change allowed is moving end dates that have passed into the future — the repository's
own ``submission.json`` is submitted over the API, the real worker evaluates it in the sandbox, and what
lands on the leaderboard must equal what the script's ``evaluate()`` returns when called directly, with no
Assay code around it, by a plain interpreter with EvalAI's worker stack. Both failing counts as equal.
Scripts that score at random (``random.randint``) are compared on what does not vary: the reference runs
twice, with ``random`` seeded differently each time (so the comparison itself is deterministic: unseeded
runs agree by chance once in a hundred per label), and labels whose value differs between those two runs
are checked for shape only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.challenges.models import Participation
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
from assay.worker import Worker, WorkerClient
from tests import corpus
from tests.factories import import_published, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPOSITORIES = (
    sorted(p.name for p in corpus.BUNDLES.iterdir() if (p / "challenge_config.yaml").is_file())
    if corpus.BUNDLES.is_dir()
    else []
)
# What each repository's submission.json scores, pinned so that a broken environment (which would make the
# reference fail too, and "both failing" count as equal) cannot pass unnoticed: "finished", or the failure.
EXPECTED = {
    ("AGENT-Challenge", "test"): "finished",  # numpy, no requirements file
    ("URP_EvalAI_25", "dev"): "module 'numpy' has no attribute 'float'",  # np.float: EvalAI's py3.9 stack too
    ("affective-visdial", "dev"): "finished",
    ("affective-visdial", "test"): "finished",
    ("python-spoc", "dev"): "invalid literal for int()",  # its submission.json is '{}', its script reads lines
    ("python-spoc", "test"): "invalid literal for int()",
}
_END_DATE = re.compile(r"^(?P<head>\s*end_date:\s*)(?P<date>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})", re.M)

REFERENCE = textwrap.dedent(
    """
    import importlib, json, math, random, shutil, sys, tempfile
    script, annotation, submission, codename, seed = sys.argv[1:6]
    random.seed(int(seed))
    root = tempfile.mkdtemp()
    shutil.copytree(script, root + "/evaluation_script")
    sys.path.insert(0, root)
    try:
        module = importlib.import_module("evaluation_script")
        output = module.evaluate(annotation, submission, codename, submission_metadata={"id": 1, "status": "running"})
        print(json.dumps({"ok": True, "output": output}, default=float))
    except BaseException as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    """
)


def test_the_repositories_are_there() -> None:
    assert len(REPOSITORIES) >= 4, corpus.need(corpus.BUNDLES)


def _moved_forward(folder: Path) -> None:
    """End dates in the past become the same day and time in 2099: the only edit the promise allows."""
    config = folder / "challenge_config.yaml"
    now = dt.datetime.now()

    def move(match: re.Match) -> str:
        when = dt.datetime.fromisoformat(match["date"].replace(" ", "T"))
        return match["head"] + (when.replace(year=2099).strftime("%Y-%m-%d %H:%M:%S") if when < now else match["date"])

    config.write_text(_END_DATE.sub(move, config.read_text(encoding="utf-8")), encoding="utf-8")


def _annotated_phases(folder: Path) -> list[dict]:
    config = yaml.safe_load((folder / "challenge_config.yaml").read_text(encoding="utf-8"))
    return [p for p in config["challenge_phases"] if p.get("test_annotation_file")]


def _reference_python(environment: str | None) -> str:
    """A plain interpreter with EvalAI's worker stack (the default evaluation environment), no Assay code."""
    from assay.evaluation.venvs import ensure_stack

    return str(ensure_stack(environment) / "bin" / "python")


def _reference(folder: Path, phase: dict, tmp: Path, environment: str | None, seed: int = 1) -> dict:
    run = subprocess.run(
        [
            _reference_python(environment),
            "-c",
            REFERENCE,
            str(folder / "evaluation_script"),
            str(folder / phase["test_annotation_file"]),
            str(folder / "submission.json"),
            phase["codename"],
            str(seed),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp,
    )
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert last.startswith("{"), f"the reference run printed no result: {run.stdout[-500:]} {run.stderr[-2000:]}"
    return json.loads(last)


def _expected_entries(output: dict) -> dict[str, dict[str, Any]]:
    """{split: {label: value}} from what evaluate() returned; NaN is "undefined" (None), as Assay stores it."""
    out: dict[str, dict[str, Any]] = {}
    for item in output.get("result") or []:
        for split, metrics in item.items():
            out[split] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    return out


def _same(expected: Any, actual: Any, varies: bool) -> bool:
    if varies:
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    if expected is None or actual is None:
        return expected is None and actual is None
    return math.isclose(float(expected), float(actual), rel_tol=1e-12, abs_tol=0)


@pytest.fixture
def participant_team(django_user_model):
    user = django_user_model.objects.create_user("realp", "realp@uni.example", "pw")
    team = ParticipantTeam.objects.create(name="Real participants", created_by=user)
    ParticipantTeamMember.objects.create(team=team, user=user)
    return user, team


@pytest.mark.parametrize("repository", REPOSITORIES)
def test_repository_scores_as_evalai_would(
    repository, media, host_team, participant_team, admin_user, live_server, tmp_path
) -> None:
    folder = Path(shutil.copytree(corpus.BUNDLES / repository, tmp_path / repository, symlinks=True))
    _moved_forward(folder)
    _compare(repository, folder, None, host_team, participant_team, admin_user, live_server, tmp_path)


def test_older_stack_scores_np_float_repository(
    media, host_team, participant_team, admin_user, live_server, tmp_path
) -> None:
    """URP_EvalAI_25 uses ``np.float``: with the one documented key for EvalAI's py3.7 stack it scores."""
    folder = Path(shutil.copytree(corpus.need(corpus.BUNDLES) / "URP_EvalAI_25", tmp_path / "urp", symlinks=True))
    _moved_forward(folder)
    config = folder / "challenge_config.yaml"
    config.write_text("evaluation_environment: evalai-py3.7\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    _compare("URP_EvalAI_25", folder, "evalai-py3.7", host_team, participant_team, admin_user, live_server, tmp_path)


def _compare(repository, folder, environment, host_team, participant_team, admin_user, live_server, tmp_path) -> None:
    phases = _annotated_phases(folder)
    assert phases, f"{repository} has no phase with an annotation file"

    challenge = import_published(host_team, folder)  # the folder as it is: evaluation_script/ not zipped
    user, team = participant_team
    Participation.objects.create(challenge=challenge, team=team, terms_accepted_at=timezone.now())
    client = APIClient()
    client.force_authenticate(user)

    submitted: dict[str, int] = {}
    for phase in phases:
        db_phase = challenge.phases.get(codename=phase["codename"])
        response = client.post(
            f"/api/v1/phases/{db_phase.pk}/submissions",
            {"input_file": upload((folder / "submission.json").read_bytes(), "submission.json")},
            format="multipart",
        )
        assert response.status_code == 201, (phase["codename"], response.content)
        submitted[phase["codename"]] = response.json()["id"]

    _, token = create_worker_token(admin_user, f"real-{repository}")
    worker = Worker(WorkerClient(live_server.url, token), tmp_path / "worker", poll_wait=1)
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": len(submitted)}, daemon=True)
    thread.start()
    thread.join(900)
    worker.client.close()  # its kept-alive connection holds a live-server thread's database session
    assert not thread.is_alive(), "the worker did not finish the repository's submissions in time"

    for phase in phases:
        codename = phase["codename"]
        first = _reference(folder, phase, tmp_path, environment)
        submission = Submission.objects.get(pk=submitted[codename])
        expected_outcome = "finished" if environment else EXPECTED[(repository, codename)]
        if not first["ok"]:
            assert submission.status == "failed", (codename, first["error"], submission.status)
            assert expected_outcome in first["error"] and expected_outcome in submission.failure_reason, (
                codename,
                first["error"],
                submission.failure_reason,
            )
            continue
        assert expected_outcome == "finished", (codename, "the reference scored it", first["output"])
        assert submission.status == "finished", (codename, submission.status, submission.failure_reason)
        second = _reference(folder, phase, tmp_path, environment, seed=2)
        expected = _expected_entries(first["output"])
        again = _expected_entries(second["output"])
        entries = {
            e.phase_split.dataset_split.codename: e.result
            for e in LeaderboardEntry.objects.filter(submission=submission).select_related("phase_split__dataset_split")
        }
        assert set(entries) == set(expected), (codename, entries, expected)
        for split, metrics in expected.items():
            assert set(entries[split]) == set(metrics), (codename, split, entries[split], metrics)
            for label, value in metrics.items():
                varies = again[split][label] != value
                assert _same(value, entries[split][label], varies), (codename, split, label, entries[split][label])
