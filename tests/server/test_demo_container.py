"""The docker-based demo challenge: its bundle, the demo seed importing it, the ready-made participant image.

The image tests need a Docker engine and busybox-static and skip without them; the rest is plain Python.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from assay.bundle.reader import read_bundle
from assay.evaluation.containers import localimages
from assay.evaluation.containers.intake import read_manifest
from tests.factories import DEMO_BUNDLE, REPO

CONTAINER_BUNDLE = REPO / "examples" / "demo-container-challenge"
INPUTS = CONTAINER_BUNDLE / "inputs" / "numbers.txt"
LABELS = CONTAINER_BUNDLE / "annotations" / "digit_sums.json"
#: the second phase's (``heldout``): other numbers at the same /input/numbers.txt, so one image serves both
HELDOUT_INPUTS = CONTAINER_BUNDLE / "inputs" / "heldout" / "numbers.txt"
HELDOUT_LABELS = CONTAINER_BUNDLE / "annotations" / "heldout_digit_sums.json"
PROGRAM = CONTAINER_BUNDLE / "participant" / "predict.sh"


def _evaluation_script() -> ModuleType:
    """The bundle's evaluation_script package, imported as the worker would (a package with relative imports)."""
    name = "demo_container_evaluation_script"
    if name in sys.modules:
        return sys.modules[name]
    folder = CONTAINER_BUNDLE / "evaluation_script"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _score(tmp_path: Path, submission: Any, labels: Path = LABELS) -> dict:
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(submission))
    return _evaluation_script().evaluate(str(labels), str(path), "container")["submission_result"]["public"]


def _labels(path: Path = LABELS) -> list[int]:
    return json.loads(path.read_text())["digit_sums"]


def test_bundle_is_a_valid_static_dataset_container_challenge() -> None:
    with read_bundle(CONTAINER_BUNDLE) as bundle:
        config = bundle.config
        assert not bundle.warnings, [p.message for p in bundle.warnings]
        assert config.is_docker_based and config.is_static_dataset_code_upload
        assert config.max_docker_image_size <= 50 * 1024**2
        first, second = config.challenge_phases
        assert [first.codename, second.codename] == ["container", "heldout"]
        # Assay's test_inputs key is known; labels apart from inputs
        assert bundle.test_inputs == {first.id: "inputs/numbers.txt", second.id: "inputs/heldout/numbers.txt"}
        assert bundle.annotations == {
            first.id: "annotations/digit_sums.json",
            second.id: "annotations/heldout_digit_sums.json",
        }
    for inputs, labels, count in ((INPUTS, LABELS, 20), (HELDOUT_INPUTS, HELDOUT_LABELS, 30)):
        numbers = inputs.read_text().split()
        assert len(numbers) == count and _labels(labels) == [sum(map(int, n)) for n in numbers]


def test_evaluation_script_scores_right_perfectly_and_wrong_worse(tmp_path: Path) -> None:
    labels = _labels()
    assert _score(tmp_path, {"predictions": labels}) == {"Accuracy": 1.0, "MAE": 0.0}
    wrong = _score(tmp_path, {"predictions": [y + 1 if i % 2 else y for i, y in enumerate(labels)]})
    assert wrong == {"Accuracy": 0.5, "MAE": 0.5}
    for bad in ({"predictions": labels[:-1]}, {"predictions": ["7"] * 20}, labels):
        with pytest.raises(ValueError):
            _score(tmp_path, bad)


@pytest.mark.skipif(not localimages.BUSYBOX.is_file(), reason="busybox-static is not installed")
def test_participant_program_runs_in_busybox_sh(tmp_path: Path) -> None:
    """The demo program is plain busybox sh (the image has no Python) and its output scores perfectly."""
    for inputs, labels in ((INPUTS, LABELS), (HELDOUT_INPUTS, HELDOUT_LABELS)):
        env = {"PATH": "/usr/bin:/bin", "INPUT_PATH": str(inputs.parent), "SUBMISSION_PATH": str(tmp_path)}
        subprocess.run([str(localimages.BUSYBOX), "sh", str(PROGRAM)], env=env, check=True, timeout=30)
        predictions = json.loads((tmp_path / "submission.json").read_text())
        assert _score(tmp_path, predictions, labels) == {"Accuracy": 1.0, "MAE": 0.0}


@pytest.fixture
def demo_var(settings, media, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


@pytest.mark.django_db
def test_seed_imports_both_challenges_and_says_docker_is_needed(demo_var: Path, monkeypatch) -> None:
    from assay.server import demo
    from assay.server.challenges.models import Challenge, Participation

    monkeypatch.setattr(demo, "engine", lambda timeout=10: None)
    lines = list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site="http://testserver"))
    challenges = list(Challenge.objects.filter(host_team__name=demo.DEMO_HOST_TEAM).order_by("pk"))
    assert [c.is_docker_based for c in challenges] == [False, True]
    for c in challenges:
        assert c.published and c.approved_by_admin
        assert Participation.objects.filter(challenge=c, team__name=demo.DEMO_PARTICIPANT_TEAM).exists()
    container = challenges[1]
    assert container.is_static_dataset_code_upload and container.max_docker_image_size == 50 * 1024**2
    phase = container.phases.get(codename="container")
    assert phase.test_inputs and phase.test_inputs_sha256 == hashlib.sha256(INPUTS.read_bytes()).hexdigest()
    assert any("Container submissions need Docker" in line for line in lines), lines
    assert not (demo_var / demo.PREDICTOR_TARBALL).exists()

    again = list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE)))  # idempotent: updated in place
    assert list(Challenge.objects.filter(host_team__name=demo.DEMO_HOST_TEAM).order_by("pk")) == challenges
    assert len(again) == len(lines)


@pytest.mark.django_db
def test_seed_without_the_container_bundle_still_works(demo_var: Path, tmp_path: Path) -> None:
    from assay.server import demo
    from assay.server.challenges.models import Challenge

    lines = list(demo.seed("pw", str(DEMO_BUNDLE), str(tmp_path / "nowhere")))
    assert Challenge.objects.filter(host_team__name=demo.DEMO_HOST_TEAM).count() == 1
    assert any("No container demo challenge" in line for line in lines)


@pytest.fixture(scope="module")
def engine() -> Any:
    if importlib.util.find_spec("docker") is None:
        pytest.skip("the Docker SDK is not installed (pip install -e '.[containers]')")
    if not localimages.BUSYBOX.is_file():
        pytest.skip(f"{localimages.BUSYBOX} is missing: apt-get install -y busybox-static (make test does it)")
    client = localimages.engine()
    if client is None:
        pytest.skip("no Docker engine answers (make test starts dockerd)")
    return client


def test_predictor_tarball_is_accepted_and_scores_perfectly(engine: Any, tmp_path: Path) -> None:
    """The demo image is what the platform accepts (non-root, one image, small) and its run scores 1.0."""
    from assay.evaluation.containers import run_static_dataset
    from assay.evaluation.containers.docker_backend import DockerBackend
    from assay.server.demo import build_predictor_tarball

    target = tmp_path / "demo" / "demo-predictor.tar"
    tag, tarball = build_predictor_tarball(engine, PROGRAM, target)
    assert tarball == target
    manifest = read_manifest(tarball, max_bytes=50 * 1024**2, numeric_user=True)
    assert manifest.user == "1000" and manifest.repo_tags == (tag,)
    written = tarball.stat().st_mtime_ns
    assert build_predictor_tarball(engine, PROGRAM, target) == (tag, target)
    assert tarball.stat().st_mtime_ns == written  # cached: not written again

    workdir = tmp_path / "run"
    workdir.mkdir()
    run = run_static_dataset(DockerBackend(engine), manifest.config_digest, INPUTS, workdir)
    assert run.predictions is not None, run.error
    assert _score(tmp_path, json.loads(run.predictions.read_text())) == {"Accuracy": 1.0, "MAE": 0.0}


@pytest.mark.django_db
def test_seed_with_docker_writes_the_tarball_and_says_where(engine: Any, demo_var: Path) -> None:
    from assay.server import demo

    lines = list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site="http://testserver"))
    tarball = demo_var / demo.PREDICTOR_TARBALL
    assert tarball.is_file()
    (line,) = [line for line in lines if "Demo participant image" in line]
    assert str(tarball) in line and "http://testserver/challenges/" in line and "assay push assay-demo/" in line
    shutil.rmtree(demo_var / "demo")
