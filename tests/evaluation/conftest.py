"""Helpers for evaluation tests: zip a script package from source strings, build jobs, skip reasons."""

from __future__ import annotations

import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.evaluation import EvaluationJob, EvaluationLimits, EvaluatorPool, detect_sandbox

ACCURACY_SCRIPT = {
    "__init__.py": "from .main import evaluate\n",
    "main.py": """
        import json

        from .metrics import accuracy


        def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
            with open(test_annotation_file) as fh:
                truth = json.load(fh)
            with open(user_submission_file) as fh:
                predictions = json.load(fh)
            print("evaluating", len(predictions), "predictions for", phase_codename)
            return {
                "result": [{"test_split": {"accuracy": accuracy(truth, predictions)}}],
                "submission_metadata": kwargs["submission_metadata"],
            }
    """,
    "metrics.py": """
        def accuracy(truth, predictions):
            hits = sum(1 for key, label in truth.items() if predictions.get(key) == label)
            return hits / len(truth)
    """,
}


def make_zip(folder: Path, files: dict[str, str], name: str = "evaluation_script.zip") -> Path:
    """Zip ``files`` (dedented source) flat, as a host uploads an EvalAI evaluation script."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    with zipfile.ZipFile(target, "w") as zf:
        for rel, text in files.items():
            # A fixed timestamp: the same sources always give the same zip (and sha256).
            zf.writestr(zipfile.ZipInfo(rel, date_time=(2024, 1, 1, 0, 0, 0)), textwrap.dedent(text).lstrip("\n"))
    return target


def write_json(path: Path, data: object) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def job_for(
    tmp_path: Path,
    files: dict[str, str],
    *,
    submission: object = None,
    annotation: object = None,
    limits: EvaluationLimits | None = None,
    key: str | None = None,
    **extra,
) -> EvaluationJob:
    """A job for a script given as sources; annotation and submission default to small JSON files."""
    script = make_zip(tmp_path / "script", files)
    ann = write_json(tmp_path / "data" / "annotations.json", annotation if annotation is not None else {"a": 1})
    sub = write_json(tmp_path / "data" / "submission.json", submission if submission is not None else {"a": 1})
    return EvaluationJob(
        key=key or f"{script.read_bytes().hex()[:32]}:{ann.name}",
        script_zip=script,
        annotation_file=ann,
        submission_file=sub,
        phase_codename="dev",
        submission_metadata={"id": 7, "participant_team_name": "team"},
        limits=limits or EvaluationLimits(wall_seconds=30, cpu_seconds=30, memory_bytes=1024**3),
        **extra,
    )


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[EvaluatorPool]:
    p = EvaluatorPool(workdir=tmp_path / "work", sandbox="auto", max_warm=4, parallelism=2)
    yield p
    p.close()


def require_bwrap() -> None:
    report = detect_sandbox()
    if not report.usable:
        pytest.skip(f"bubblewrap cannot sandbox here: {report.reason}")


@pytest.fixture
def bwrap_pool(tmp_path: Path) -> Iterator[EvaluatorPool]:
    require_bwrap()
    p = EvaluatorPool(workdir=tmp_path / "work", sandbox="bwrap", max_warm=4, parallelism=2)
    yield p
    p.close()
