"""What a good bundle reads into: every layout EvalAI accepts, files inlined, EvalAI's defaults applied."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import builders
import pytest

from assay.bundle import Bundle, BundleError, Limits, Problem, json_schema, parse_config, read_bundle
from assay.bundle.model import AWS_INFRA_KEYS, ChallengeConfig


def _warnings(bundle: Bundle, code: str) -> list[Problem]:
    return [w for w in bundle.warnings if w.code == code]


def _config_with_phase(**phase_changes) -> dict:
    config = builders.minimal_config()
    config["challenge_phases"][0].update(phase_changes)
    return config


# --- layouts -------------------------------------------------------------------------------------

LAYOUTS = {
    "folder": lambda tmp: builders.write_folder(tmp / "bundle"),
    "zip": lambda tmp: builders.write_zip(tmp / "bundle.zip"),
    "zip-nested-folder": lambda tmp: builders.write_zip(tmp / "bundle.zip", prefix="my-challenge/"),
    "zip-yml": lambda tmp: builders.write_zip(tmp / "bundle.zip", config_name="challenge_config.yml"),
    "zip-legacy-any-yaml-name": lambda tmp: builders.write_zip(tmp / "bundle.zip", prefix="x/", config_name="c.yaml"),
    "zip-file-object": lambda tmp: io.BytesIO(builders.write_zip(tmp / "bundle.zip").read_bytes()),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_complete_bundle_reads(layout: str, tmp_path: Path) -> None:
    source = LAYOUTS[layout](tmp_path)
    with read_bundle(source) as bundle:
        config = bundle.config
        assert not bundle.config_only
        assert bundle.warnings == []
        assert bundle.missing_files == []
        assert config.title == "Test Challenge"
        assert config.start_date == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        assert config.leaderboard[0].schema_.default_order_by == "Total"
        # HTML is read and inlined, keyed by config key; phase descriptions by phase id
        assert bundle.html == {
            "description": builders.TEMPLATES["templates/description.html"],
            "evaluation_details": builders.TEMPLATES["templates/evaluation_details.html"],
            "terms_and_conditions": builders.TEMPLATES["templates/terms_and_conditions.html"],
            "submission_guidelines": builders.TEMPLATES["templates/submission_guidelines.html"],
        }
        assert bundle.phase_html == {1: "<p>Dev phase — ünïcode</p>"}
        # annotations are not loaded, but can be streamed
        assert bundle.annotations == {1: "annotations/test_annotations_devsplit.json"}
        assert bundle.annotation_size(1) == len(b'{"answers": [1, 2, 3]}')
        with bundle.open_annotation(1) as fh:
            assert json.load(fh) == {"answers": [1, 2, 3]}
        script = bundle.evaluation_script
        assert script is not None
        assert sorted(script.names) == ["__init__.py", "main.py"]
        assert not script.has_requirements
        assert bundle.logo is None


def test_macosx_and_git_folders_are_skipped(tmp_path: Path) -> None:
    path = builders.write_zip(
        tmp_path / "bundle.zip",
        extra={
            "__MACOSX/._challenge_config.yaml": b"\x00\x05\x16\x07",
            ".git/config": "[core]",
            "__MACOSX/x.yaml": "a",
        },
    )
    with read_bundle(path) as bundle:
        assert bundle.config.title == "Test Challenge"


def test_crlf_and_bom_config(tmp_path: Path) -> None:
    text = builders.dump_config(builders.minimal_config()).replace(b"\n", b"\r\n")
    config, lines, problems = parse_config(b"\xef\xbb\xbf" + text + b"categroy: x\r\n")
    assert config.title == "Test Challenge"
    assert [(p.code, p.line) for p in problems] == [("unknown_key", text.count(b"\n") + 1)]


def test_bundle_closes_its_zip(tmp_path: Path) -> None:
    bundle = read_bundle(builders.write_zip(tmp_path / "bundle.zip"))
    with bundle:
        pass
    with pytest.raises(ValueError):
        bundle.open_annotation(1).read()


# --- logo --------------------------------------------------------------------------------------


def test_png_logo_accepted(tmp_path: Path) -> None:
    config = builders.minimal_config(image="logo.png")
    with read_bundle(builders.write_zip(tmp_path / "b.zip", config, logo=builders.PNG_BYTES)) as bundle:
        assert bundle.logo == ("logo.png", builders.PNG_BYTES)
        assert bundle.warnings == []


@pytest.mark.parametrize(
    ("image", "files", "words"),
    [
        ("logo.png", {"logo.png": b"GIF89a not a png"}, "not a real PNG"),
        ("logo.jpg", {"logo.jpg": builders.PNG_BYTES}, "not a real JPG"),
        ("logo.gif", {"logo.gif": b"GIF89a"}, "not .png/.jpg/.jpeg"),
        ("images/missing.png", {}, "not in the bundle"),
    ],
)
def test_bad_logo_ignored_with_warning(tmp_path: Path, image: str, files: dict, words: str) -> None:
    """EvalAI silently drops a bad logo; Assay drops it too, but says so."""
    config = builders.minimal_config(image=image)
    with read_bundle(builders.write_folder(tmp_path / "b", config, extra=files)) as bundle:
        assert bundle.logo is None
        warnings = [w for w in bundle.warnings if w.key == "image"]
        assert len(warnings) == 1
        assert words in warnings[0].message
        text_lines = builders.dump_config(config).decode().splitlines()
        assert warnings[0].line == text_lines.index(f"image: {image}") + 1


def test_oversized_logo_ignored_with_warning(tmp_path: Path) -> None:
    config = builders.minimal_config(image="logo.png")
    path = builders.write_folder(tmp_path / "b", config, logo=builders.PNG_BYTES + bytes(2000))
    with read_bundle(path, limits=Limits(max_logo_bytes=1000)) as bundle:
        assert bundle.logo is None
        assert [w.code for w in bundle.warnings] == ["bad_logo"]


# --- evaluation script ---------------------------------------------------------------------------


def test_script_folder_is_zipped(tmp_path: Path) -> None:
    """The docs' ``evaluation_script: evaluation_script/`` form: Assay zips the folder itself."""
    files = {
        "evaluation_script/__init__.py": builders.SCRIPT_INIT,
        "evaluation_script/main.py": builders.SCRIPT_MAIN,
        "evaluation_script/requirements.txt": "numpy==2.0\n",
        "evaluation_script/helpers/metrics.py": "def acc(): return 1\n",
    }
    config = builders.minimal_config(evaluation_script="evaluation_script/")
    root = builders.write_folder(tmp_path / "b", config, extra=files, omit=("evaluation_script.zip",))
    with read_bundle(root) as bundle:
        script = bundle.evaluation_script
        assert script is not None and bundle.warnings == []  # the documented form: nothing to warn about
        assert sorted(script.names) == ["__init__.py", "helpers/metrics.py", "main.py", "requirements.txt"]
        assert script.has_requirements
        with zipfile.ZipFile(io.BytesIO(script.data)) as zf:
            assert zf.read("main.py").decode() == builders.SCRIPT_MAIN
            assert zf.read("requirements.txt") == b"numpy==2.0\n"


def test_script_folder_key_warns_only_when_something_is_left_out(tmp_path: Path) -> None:
    files = {
        "evaluation_script/__init__.py": builders.SCRIPT_INIT,
        "evaluation_script/main.py": builders.SCRIPT_MAIN,
        "evaluation_script/__pycache__/main.cpython-311.pyc": "x",
    }
    config = builders.minimal_config(evaluation_script="evaluation_script/")
    root = builders.write_folder(tmp_path / "b", config, extra=files, omit=("evaluation_script.zip",))
    with read_bundle(root) as bundle:
        assert sorted(bundle.evaluation_script.names) == ["__init__.py", "main.py"]
        (warning,) = _warnings(bundle, "evaluation_script_folder_zipped")
    assert "2 file(s) zipped" in warning.message and "1 cache file(s) left out" in warning.message


def test_script_folder_inside_nested_zip(tmp_path: Path) -> None:
    """Legacy upload: everything under one folder of the zip, the script as a folder too."""
    files = {"evaluation_script/__init__.py": builders.SCRIPT_INIT, "evaluation_script/main.py": ""}
    config = builders.minimal_config(evaluation_script="evaluation_script")
    path = builders.write_zip(tmp_path / "b.zip", config, prefix="top/", extra=files, omit=("evaluation_script.zip",))
    with read_bundle(path) as bundle:
        assert bundle.evaluation_script is not None
        assert sorted(bundle.evaluation_script.names) == ["__init__.py", "main.py"]
        assert bundle.warnings == []


def test_script_zip_with_requirements(tmp_path: Path) -> None:
    script = builders.script_zip({"__init__.py": builders.SCRIPT_INIT, "main.py": "", "requirements.txt": "x"})
    with read_bundle(builders.write_zip(tmp_path / "b.zip", extra={"evaluation_script.zip": script})) as bundle:
        assert bundle.evaluation_script is not None
        assert bundle.evaluation_script.has_requirements
        assert bundle.evaluation_script.data == script


def test_script_zipped_with_its_folder_warns_with_zip_j_hint(tmp_path: Path) -> None:
    script = builders.script_zip(
        {
            "evaluation_script/__init__.py": builders.SCRIPT_INIT,
            "evaluation_script/main.py": builders.SCRIPT_MAIN,
        }
    )
    with read_bundle(builders.write_zip(tmp_path / "b.zip", extra={"evaluation_script.zip": script})) as bundle:
        (warning,) = _warnings(bundle, "script_without_init")
        assert "zip -j" in warning.message and "'evaluation_script'" in warning.message
        assert (warning.key, warning.line) == ("evaluation_script", 7)


def test_script_without_init_and_no_folder_warns_without_hint(tmp_path: Path) -> None:
    script = builders.script_zip({"main.py": builders.SCRIPT_MAIN})
    with read_bundle(builders.write_zip(tmp_path / "b.zip", extra={"evaluation_script.zip": script})) as bundle:
        (warning,) = _warnings(bundle, "script_without_init")
        assert "__init__.py" in warning.message and "zip -j" not in warning.message


@pytest.mark.parametrize("flag", ["remote_evaluation", "is_docker_based"])
def test_script_optional_for_remote_and_docker_challenges(tmp_path: Path, flag: str) -> None:
    config = builders.minimal_config(evaluation_script=None, **{flag: True})
    with read_bundle(builders.write_folder(tmp_path / "b", config, omit=("evaluation_script.zip",))) as bundle:
        assert bundle.evaluation_script is None


def test_remote_evaluation_needs_no_annotation(tmp_path: Path) -> None:
    config = builders.minimal_config(remote_evaluation=True)
    del config["challenge_phases"][0]["test_annotation_file"]
    with read_bundle(builders.write_folder(tmp_path / "b", config)) as bundle:
        assert bundle.annotations == {}


# --- EvalAI's defaults ---------------------------------------------------------------------------


def test_defaults_applied() -> None:
    config, _, _ = parse_config(builders.dump_config(builders.minimal_config()))
    phase = config.challenge_phases[0]
    assert phase.max_submissions_per_month is None
    assert phase.effective_max_per_month == phase.max_submissions == 50  # copied from max_submissions
    assert phase.max_concurrent_submissions_allowed == 3
    assert phase.effective_max_concurrent == 3
    assert phase.file_types == [".json", ".zip", ".txt", ".tsv", ".gz", ".csv", ".h5", ".npy"]
    assert config.retention_policy(phase) == "keep_forever"
    assert config.submission_time_limit == 86400
    assert config.is_registration_open and config.enable_forum
    assert config.challenge_usage_type == "paid"
    split = config.challenge_phase_splits[0]
    assert (split.show_execution_time, split.show_leaderboard_by_latest_submission) == (False, False)
    assert split.show_scores_on_leaderboard and split.is_multi_metric_leaderboard


def test_explicit_monthly_limit_wins() -> None:
    config, _, _ = parse_config(builders.dump_config(_config_with_phase(max_submissions_per_month=7)))
    assert config.challenge_phases[0].effective_max_per_month == 7


def test_concurrency_clamped_to_daily_limit() -> None:
    config = _config_with_phase(max_concurrent_submissions_allowed=10, max_submissions_per_day=4)
    phase = parse_config(builders.dump_config(config))[0].challenge_phases[0]
    assert phase.max_concurrent_submissions_allowed == 10
    assert phase.effective_max_concurrent == 4


@pytest.mark.parametrize(
    ("usage", "policy", "expected"),
    [("internal", None, "days_14"), ("paid", None, "keep_forever"), ("internal", "months_3", "months_3")],
)
def test_retention_policy(usage: str, policy: str | None, expected: str) -> None:
    config = _config_with_phase(**({"submission_artifact_retention_policy": policy} if policy else {}))
    config["challenge_usage_type"] = usage
    parsed = parse_config(builders.dump_config(config))[0]
    assert parsed.retention_policy(parsed.challenge_phases[0]) == expected


def test_file_types_as_list_and_mixed_case() -> None:
    phase = parse_config(builders.dump_config(_config_with_phase(allowed_submission_file_types=["JSON", ".Zip"])))[0]
    assert phase.challenge_phases[0].file_types == [".json", ".zip"]


def test_leaderboard_display_flags_honoured_from_yaml() -> None:
    """EvalAI ignores these three in YAML (a documented quirk); Assay applies them."""
    config = builders.minimal_config()
    config["challenge_phase_splits"][0].update(
        show_execution_time=True, show_leaderboard_by_latest_submission=True, show_scores_on_leaderboard=False
    )
    parsed, _, problems = parse_config(builders.dump_config(config))
    split = parsed.challenge_phase_splits[0]
    assert split.show_execution_time is True
    assert split.show_leaderboard_by_latest_submission is True
    assert split.show_scores_on_leaderboard is False
    assert problems == []


def test_yaml_timestamps_and_text_dates_agree() -> None:
    config = builders.minimal_config(start_date="2020-01-01 00:00:00", end_date="2099-12-31T23:59:59Z")
    parsed = parse_config(builders.dump_config(config))[0]
    assert parsed.start_date == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert parsed.end_date == dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


# --- keys Assay sets aside -----------------------------------------------------------------------


def test_aws_keys_kept_in_infrastructure_with_warning() -> None:
    config = builders.minimal_config(worker_memory=2048, job_cpu_cores="2000m", use_fifo_sqs=True)
    text = builders.dump_config(config)
    parsed, lines, problems = parse_config(text)
    assert parsed.infrastructure == {"worker_memory": 2048, "job_cpu_cores": "2000m", "use_fifo_sqs": True}
    (warning,) = [p for p in problems if p.code == "aws_setting_ignored"]
    assert warning.severity == "warning"
    assert "worker_memory" in warning.message and "job_cpu_cores" in warning.message
    assert warning.line == text.decode().splitlines().index("worker_memory: 2048") + 1  # the first of them


def test_ignored_phase_keys_dropped_silently() -> None:
    """The Starters YAML sets ``is_active`` and ``challenge`` on phases; EvalAI ignores both."""
    parsed, _, problems = parse_config(builders.dump_config(_config_with_phase(is_active=True, challenge=1)))
    assert problems == []
    assert not hasattr(parsed.challenge_phases[0], "challenge")


def test_unknown_keys_warned_with_lines() -> None:
    config = builders.minimal_config(categroy="vision")
    config["challenge_phase_splits"][0]["showeceution_time"] = False
    config["leaderboard"][0]["schema"]["metadata"]["Score"]["sort_ascendng"] = True
    text = builders.dump_config(config).decode()
    lines = text.splitlines()
    _, _, problems = parse_config(text.encode())
    found = {p.key: p for p in problems if p.code == "unknown_key"}
    assert set(found) == {
        "categroy",
        "challenge_phase_splits.0.showeceution_time",
        "leaderboard.0.schema.metadata.Score.sort_ascendng",
    }
    for key, problem in found.items():
        leaf = key.rsplit(".", 1)[-1]
        assert lines[problem.line - 1].strip().startswith(leaf + ":"), (key, problem.line)
        assert problem.severity == "warning"
    assert "did you mean 'show_execution_time'" in found["challenge_phase_splits.0.showeceution_time"].message
    assert "did you mean 'sort_ascending'" in found["leaderboard.0.schema.metadata.Score.sort_ascendng"].message


def test_duplicate_yaml_key_warns_last_wins() -> None:
    text = builders.dump_config(builders.minimal_config()) + b"title: Second Title\n"
    parsed, _, problems = parse_config(text)
    assert parsed.title == "Second Title"
    (warning,) = [p for p in problems if p.code == "duplicate_key"]
    assert warning.line == text.count(b"\n") and warning.key == "title"


def test_warnings_do_not_block_but_errors_carry_them(tmp_path: Path) -> None:
    config = builders.minimal_config(categroy="x", tags=list("abcde"))
    with pytest.raises(BundleError) as info:
        read_bundle(builders.write_folder(tmp_path / "b", config))
    assert [p.code for p in info.value.errors] == ["extra_tags"]
    assert [p.code for p in info.value.warnings] == ["unknown_key"]


def test_config_only_mode_lists_unchecked_files(tmp_path: Path) -> None:
    path = tmp_path / "challenge_config.yaml"
    path.write_bytes(builders.dump_config(builders.minimal_config(image="logo.png")))
    with read_bundle(path) as bundle:
        assert bundle.config_only
        expected = {
            *builders.TEMPLATES,
            "annotations/test_annotations_devsplit.json",
            "evaluation_script.zip",
        }
        assert set(bundle.missing_files) == expected | {"logo.png"}
        assert [w.code for w in bundle.warnings] == ["config_only"]
        assert bundle.html == {} and bundle.evaluation_script is None


# --- JSON Schema ---------------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def test_json_schema_is_valid_and_lists_every_top_level_key() -> None:
    schema = json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    expected = {info.alias or name for name, info in ChallengeConfig.model_fields.items()} - {"infrastructure"}
    expected |= set(AWS_INFRA_KEYS)
    assert set(schema["properties"]) == expected
    assert {"title", "leaderboard", "challenge_phases", "start_date", "end_date"} <= set(schema["required"])

    jsonschema = pytest.importorskip("jsonschema")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    config = builders.minimal_config(worker_memory=2048)
    assert list(validator.iter_errors(_jsonable(config))) == []
    config["title"] = ["not", "a", "string"]
    config["challenge_phases"][0]["max_submissions"] = "lots"
    assert len(list(validator.iter_errors(_jsonable(config)))) >= 2
