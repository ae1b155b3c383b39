"""`assay bundle questionnaire-template` and `assay bundle check-answers`: no server needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from assay.bundle.questionnaire import load_questionnaire, template, template_text
from assay.cli.main import app

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-challenge"
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_template_is_printed_verbatim_and_loads():
    result = run("bundle", "questionnaire-template")
    assert result.exit_code == 0, result.output
    assert result.stdout == template_text("fg-ai4h-v1")
    assert load_questionnaire(result.stdout) == template()


def test_template_written_to_a_file(tmp_path):
    target = tmp_path / "questionnaire.yaml"
    result = run("bundle", "questionnaire-template", "fg-ai4h-v1", "-o", target)
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == template_text("fg-ai4h-v1")


def test_unknown_template_is_a_usage_error():
    result = run("bundle", "questionnaire-template", "nope")
    assert result.exit_code == 2
    assert "No questionnaire template 'nope'" in result.output


def test_check_answers_passes_fitting_answers_and_names_wrong_ones(tmp_path):
    questionnaire = tmp_path / "q.yaml"
    questionnaire.write_text(template_text("fg-ai4h-v1"), encoding="utf-8")
    answers = tmp_path / "answers.yaml"
    answers.write_text("intended_use: Grading retinal photographs\ncollection_end: 2024-01-31\n")
    ok = run("bundle", "check-answers", questionnaire, answers)
    assert ok.exit_code == 0, ok.output
    assert "2 answer(s) fit fg-ai4h-v1 1.0" in ok.output

    incomplete = run("bundle", "check-answers", questionnaire, answers, "--complete")
    assert incomplete.exit_code == 1
    assert "question 'personal_data' is required and has no answer" in " ".join(incomplete.output.split())

    answers.write_text("licence: GPL\n")
    wrong = run("bundle", "check-answers", questionnaire, answers)
    assert wrong.exit_code == 1
    assert "question 'licence': 'GPL' is not one of the options" in " ".join(wrong.output.split())


def test_check_answers_reports_a_broken_questionnaire_with_its_line(tmp_path):
    questionnaire = tmp_path / "q.yaml"
    questionnaire.write_text(template_text("fg-ai4h-v1").replace("type: date", "type: when"), encoding="utf-8")
    answers = tmp_path / "answers.yaml"
    answers.write_text("{}\n")
    result = run("bundle", "check-answers", questionnaire, answers)
    assert result.exit_code == 1
    assert "q.yaml:" in result.output and "type" in result.output
    missing = run("bundle", "check-answers", tmp_path / "none.yaml", answers)
    assert missing.exit_code == 2


def bundle_with_questionnaire(tmp_path: Path, text: str) -> Path:
    """The demo bundle with ``text`` as its questionnaire."""
    folder = Path(shutil.copytree(DEMO, tmp_path / "b"))
    (folder / "audit").mkdir()
    (folder / "audit" / "questionnaire.yaml").write_text(text, encoding="utf-8")
    with open(folder / "challenge_config.yaml", "a", encoding="utf-8") as fh:
        fh.write("questionnaire: audit/questionnaire.yaml\n")
    return folder


def test_validate_summarises_the_questionnaire(tmp_path):
    folder = bundle_with_questionnaire(tmp_path, template_text("fg-ai4h-v1"))
    result = run("bundle", "validate", folder, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["questionnaire"]
    assert summary == {"id": "fg-ai4h-v1", "version": "1.0", "questions": 40, "required": 23,
                       "sha256": template().sha256()}  # fmt: skip
    text = " ".join(run("bundle", "validate", folder).output.split())
    assert "questionnaire fg-ai4h-v1 1.0: 40 question(s), 23 required" in text


def test_validate_reports_the_questionnaire_file_and_line(tmp_path):
    folder = bundle_with_questionnaire(tmp_path, template_text("fg-ai4h-v1").replace("type: number", "type: count"))
    result = run("bundle", "validate", folder)
    assert result.exit_code == 1
    line = template_text("fg-ai4h-v1").splitlines().index("        type: number") + 1
    assert f"audit/questionnaire.yaml:{line}" in result.output and "(got 'count')" in " ".join(result.output.split())
