"""The audit templates (examples/audit-dr-grading, examples/audit-breast-cancer): each builds the same bytes
every time, validates as a bundle with its audit keys, questionnaire and case metadata, scores its sample
submission with one per-case row per case, and its sample shows the subgroup gap it was built to show.

Django-free: the bundle reader, the evaluation script imported as the worker would, and assay.audit.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from assay.bundle.questionnaire import load_answers, template
from assay.bundle.reader import read_bundle
from tests.factories import REPO

DR = REPO / "examples" / "audit-dr-grading"
BC = REPO / "examples" / "audit-breast-cancer"
GENERATED = (
    "annotations/test_annotations.json",
    "annotations/case_metadata.csv",
    "sample/submission.json",
    "audit/questionnaire.yaml",
)


def _module(name: str, path: Path, package: Path | None = None) -> ModuleType:
    """A module from a file; with ``package``, the folder as a package (the evaluation script's relative imports)."""
    if name in sys.modules:
        return sys.modules[name]
    locations = [str(package)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _script(folder: Path) -> ModuleType:
    name = f"{folder.name.replace('-', '_')}_evaluation_script"
    return _module(name, folder / "evaluation_script" / "__init__.py", folder / "evaluation_script")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Each template built once into a fresh folder (a complete bundle)."""
    out = {}
    for folder in (DR, BC):
        target = tmp_path_factory.mktemp(folder.name) / "bundle"
        _module(f"build_{folder.name.replace('-', '_')}", folder / "build.py").build(target)
        out[folder.name] = target
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("folder", [DR, BC], ids=lambda f: f.name)
def test_build_is_deterministic(folder: Path, built: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    _module(f"build_{folder.name.replace('-', '_')}", folder / "build.py").build(again)
    first = _digests(built[folder.name])
    assert _digests(again) == first
    assert set(GENERATED) <= set(first)
    assert "build.py" not in first  # the bundle holds what the platform reads, not the generator


@pytest.mark.parametrize("folder", [DR, BC], ids=lambda f: f.name)
def test_bundle_validates_with_its_audit_keys(folder: Path, built: dict[str, Path]) -> None:
    with read_bundle(built[folder.name]) as bundle:
        assert not bundle.warnings, [p.message for p in bundle.warnings]
        (phase,) = bundle.config.challenge_phases
        assert bundle.case_metadata == {phase.id: "annotations/case_metadata.csv"}
        assert bundle.questionnaire is not None and bundle.questionnaire.id == "fg-ai4h-v1"
        audit = phase.audit
        labels = set(bundle.config.leaderboard[0].schema_.labels)
    assert audit is not None and set(audit.intervals) <= labels
    metadata = list(csv.DictReader(io.StringIO((built[folder.name] / GENERATED[1]).read_text())))
    assert set(audit.subgroups) <= set(metadata[0]) and list(metadata[0])[0] == "case_id"
    if folder is DR:
        assert (audit.task, audit.grades, audit.referable_from) == ("ordinal", [0, 1, 2, 3, 4], 2)
        assert audit.subgroups == ["age_band", "sex", "camera"]
    else:
        assert (audit.task, audit.prediction, audit.threshold) == ("binary", "probability", 0.5)
        assert audit.subgroups == ["site"]


@pytest.mark.parametrize("folder", [DR, BC], ids=lambda f: f.name)
def test_sample_answers_complete_the_questionnaire(folder: Path, built: dict[str, Path]) -> None:
    answers = load_answers((folder / "sample" / "answers.yaml").read_bytes())
    assert template("fg-ai4h-v1").validate_answers(answers, complete=True) == []
    assert (built[folder.name] / "audit" / "questionnaire.yaml").read_bytes() == (
        REPO / "src" / "assay" / "bundle" / "templates" / "questionnaire-fg-ai4h-v1.yaml"
    ).read_bytes()


def _evaluate(folder: Path, bundle: Path, submission: Path | dict, tmp_path: Path) -> dict:
    if isinstance(submission, dict):
        path = tmp_path / "submission.json"
        path.write_text(json.dumps(submission))
        submission = path
    return _script(folder).evaluate(str(bundle / GENERATED[0]), str(submission), "audit")


def test_dr_script_scores_the_sample_with_a_row_per_case(built: dict[str, Path], tmp_path: Path) -> None:
    bundle = built[DR.name]
    reference = json.loads((bundle / GENERATED[0]).read_text())
    sample = json.loads((bundle / GENERATED[2]).read_text())
    out = _evaluate(DR, bundle, bundle / GENERATED[2], tmp_path)
    (scores,) = (entry["test"] for entry in out["result"])
    assert set(scores) == {"QWK", "Accuracy", "Referable sensitivity", "Referable specificity", "Coverage"}
    assert out["submission_result"] == {"test": scores}
    assert len(reference) == 600 and [r["case_id"] for r in out["cases"]] == list(reference)
    assert all(set(r) == {"case_id", "reference", "prediction"} for r in out["cases"])  # no attributes from here
    ungraded = [case for case, grade in sample.items() if grade is None]
    assert 0 < len(ungraded) < 60 and scores["Coverage"] == pytest.approx(1 - len(ungraded) / 600)
    assert 0.8 < scores["QWK"] < 0.95

    perfect = _evaluate(DR, bundle, reference, tmp_path)["result"][0]["test"]
    assert perfect == {
        "QWK": 1.0,
        "Accuracy": 1.0,
        "Referable sensitivity": 1.0,
        "Referable specificity": 1.0,
        "Coverage": 1.0,
    }
    empty = _evaluate(DR, bundle, {}, tmp_path)
    assert empty["result"][0]["test"]["Coverage"] == 0.0 and empty["result"][0]["test"]["QWK"] is None
    assert all(row["prediction"] is None for row in empty["cases"])


def test_dr_qwk_agrees_with_scikit_learn(built: dict[str, Path], tmp_path: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    bundle = built[DR.name]
    out = _evaluate(DR, bundle, bundle / GENERATED[2], tmp_path)
    graded = [r for r in out["cases"] if r["prediction"] is not None]
    reference, prediction = [r["reference"] for r in graded], [r["prediction"] for r in graded]
    expected = cohen_kappa_score(reference, prediction, weights="quadratic")
    assert out["result"][0]["test"]["QWK"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("submission", "message"),
    [
        ({"dr-9999": 1}, "not in the test set"),
        ({"dr-0001": 5}, "must be one of [0, 1, 2, 3, 4] or null"),
        ({"dr-0001": "2"}, "must be one of"),
        ({"dr-0001": True}, "must be one of"),
        ([1, 2, 3], "must be a JSON object"),
    ],
)
def test_dr_script_refuses_bad_submissions(built, tmp_path: Path, submission, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(submission))
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _evaluate(DR, built[DR.name], path, tmp_path)


def test_bc_script_scores_the_sample_with_a_row_per_case(built: dict[str, Path], tmp_path: Path) -> None:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    bundle = built[BC.name]
    reference = json.loads((bundle / GENERATED[0]).read_text())
    out = _evaluate(BC, bundle, bundle / GENERATED[2], tmp_path)
    scores = out["result"][0]["test"]
    assert set(scores) == {"AUROC", "Sensitivity", "Specificity", "Balanced accuracy", "Brier"}
    assert len(reference) == 171 and sum(reference.values()) == 64  # 30% of 212 malignant, 357 benign
    assert [r["case_id"] for r in out["cases"]] == list(reference)
    assert all(set(r) == {"case_id", "reference", "probability"} for r in out["cases"])
    y = [r["reference"] for r in out["cases"]]
    p = [r["probability"] for r in out["cases"]]
    assert scores["AUROC"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert scores["Brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert scores["AUROC"] > 0.9 and scores["Sensitivity"] > 0.8

    ties = {case: 0.5 for case in reference}  # every probability tied: AUROC is exactly one half
    assert _evaluate(BC, bundle, ties, tmp_path)["result"][0]["test"]["AUROC"] == 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop(next(iter(s))), "have no probability"),
        (lambda s: s.update({"wdbc-999": 0.5}), "not in the test set"),
        (lambda s: s.update({next(iter(s)): 1.5}), r"outside \[0, 1\]"),
        (lambda s: s.update({next(iter(s)): "0.5"}), "must be a number"),
        (lambda s: s.update({next(iter(s)): None}), "must be a number"),
    ],
)
def test_bc_script_refuses_bad_submissions(built, tmp_path: Path, change, message: str) -> None:
    submission = json.loads((built[BC.name] / GENERATED[2]).read_text())
    change(submission)
    with pytest.raises(ValueError, match=message):
        _evaluate(BC, built[BC.name], submission, tmp_path)


def _summary(folder: Path, bundle: Path, tmp_path: Path) -> dict:
    """The audit summary of the sample, as the server makes it: rows joined with the hidden metadata."""
    from assay.audit.summary import summarise

    rows = _evaluate(folder, bundle, bundle / GENERATED[2], tmp_path)["cases"]
    metadata = {m["case_id"]: m for m in csv.DictReader(io.StringIO((bundle / GENERATED[1]).read_text()))}
    joined = [{**row, **metadata[row["case_id"]]} for row in rows]
    with read_bundle(bundle) as read:
        settings = read.config.challenge_phases[0].audit.model_dump(mode="json", exclude_none=True)
    settings["bootstrap"]["resamples"] = 200  # enough to show the gap, quick in a test
    return summarise(settings, joined)


def _rows(summary: dict, attribute: str) -> dict[str, dict]:
    (table,) = [t for t in summary["subgroups"]["attributes"] if t["attribute"] == attribute]
    return {row["group"]: row for row in table["rows"]}


def test_dr_sample_shows_the_handheld_camera_gap(built: dict[str, Path], tmp_path: Path) -> None:
    summary = _summary(DR, built[DR.name], tmp_path)
    assert summary["task"] == "ordinal" and summary["n"] == 600
    cameras = _rows(summary, "camera")
    assert set(cameras) == {"desktop-A", "desktop-B", "handheld"}
    qwk = {group: row["figures"]["qwk"]["value"] for group, row in cameras.items()}
    assert qwk["handheld"] < min(qwk["desktop-A"], qwk["desktop-B"]) - 0.08
    handheld = cameras["handheld"]["figures"]["accuracy"]
    assert handheld["high"] < cameras["desktop-A"]["figures"]["accuracy"]["low"]  # the intervals do not overlap
    assert set(_rows(summary, "age_band")) == {"18-44", "45-64", "65+"} and set(_rows(summary, "sex")) == {"F", "M"}


def test_bc_sample_shows_site_c_worse_calibrated(built: dict[str, Path], tmp_path: Path) -> None:
    summary = _summary(BC, built[BC.name], tmp_path)
    assert summary["task"] == "binary" and summary["n"] == 171
    assert summary["calibration"] is not None and summary["curves"]["roc"]["fpr"]
    sites = _rows(summary, "site")
    assert set(sites) == {"A", "B", "C"} and not any(row["suppressed"] for row in sites.values())
    specificity = {group: row["figures"]["specificity"]["value"] for group, row in sites.items()}
    assert specificity["C"] < min(specificity["A"], specificity["B"])
