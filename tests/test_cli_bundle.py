"""`assay bundle validate` and `assay bundle schema`: exit codes, human and JSON output, no server needed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from assay.cli.main import app
from tests import corpus
from tests.bundle.builders import zip_tree

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-challenge"
CORPUS = corpus.CONFIGS
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_valid_bundle_exits_0_and_summarises():
    result = run("bundle", "validate", DEMO)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "dev" in result.output


def test_invalid_config_exits_1_with_file_line_and_key():
    result = run("bundle", "validate", CORPUS / "samuki__EvalAI-Starters.yaml")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "samuki__EvalAI-Starters.yaml:23" in text and "default_order_by" in text and "invalid" in text


def test_json_report_for_machines():
    result = run("bundle", "validate", CORPUS / "Natsume0124__MRC.yaml", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["valid"] and report["mode"] == "config"
    typo = next(p for p in report["problems"] if p["code"] == "unknown_key")
    assert typo["line"] == 231 and "show_execution_time" in typo["message"]
    assert "templates/description.html" in report["unchecked_files"]


def test_strict_turns_warnings_into_failure():
    assert run("bundle", "validate", CORPUS / "Natsume0124__MRC.yaml", "--strict").exit_code == 1


def test_usage_errors_exit_2(tmp_path):
    assert run("bundle", "validate").exit_code == 2
    assert run("bundle", "validate", tmp_path / "nope.zip").exit_code == 2
    assert run("bundle", "frobnicate").exit_code == 2


def test_garbage_file_is_invalid_not_a_crash(tmp_path):
    junk = tmp_path / "bundle.zip"
    junk.write_bytes(b"\x00\xff" * 100)
    result = run("bundle", "validate", junk, "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"][0]["code"] == "bad_zip"


def test_schema_is_json_schema(tmp_path):
    result = run("bundle", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"title", "challenge_phases", "leaderboard", "worker_memory"} <= set(schema["properties"])
    out = tmp_path / "schema.json"
    assert run("bundle", "schema", "-o", out).exit_code == 0
    assert json.loads(out.read_text()) == schema


# --- real starter repositories, as they are --------------------------------------------------------


def test_starter_repository_folder_and_zip_validate_with_the_warning(tmp_path):
    repo = corpus.need(corpus.BUNDLES) / "affective-visdial"
    for target in (repo, zip_tree(repo, tmp_path / "repo.zip")):
        result = run("bundle", "validate", target)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert "✓ valid" in text and "challenge_config.yaml:11 [evaluation_script]" in text
        assert "is zipped in its place" in text and "(evaluation_script_folder_zipped)" in text
        report = json.loads(run("bundle", "validate", target, "--json").output)
        assert report["valid"] and report["mode"] == ("folder" if target == repo else "zip")
        (problem,) = [p for p in report["problems"] if p["code"] == "evaluation_script_folder_zipped"]
        assert (problem["line"], problem["key"], problem["severity"]) == (11, "evaluation_script", "warning")


def test_evalai_example3_lists_evalais_three_errors():
    result = run("bundle", "validate", corpus.need(corpus.BUNDLES) / "evalai-examples/example3/incorrect_zip_file.zip")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "challenge_config.yaml:18 [evaluation_script]" in text
    assert "challenge_config.yaml:23 [leaderboard.0.schema.default_order_by]" in text and "'aa'" in text
    assert "challenge_config.yaml:37 [challenge_phases.0.max_submissions_per_month]" in text
