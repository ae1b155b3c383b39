"""The phase key ``data_package`` (Assay extension), checked offline: its shape, the package name, the pinned
version, safe paths inside the package, one source per file, and the rules that used to need the bundle's
own annotation or metadata file. Whether the package and its files exist is the server's to say at import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assay.bundle import BundleError, json_schema, read_bundle

from . import builders

PACKAGE = {"name": "dr-screening-test", "version": 2, "annotations": "labels/test.json"}


def config_with(package: Any, drop: tuple[str, ...] = ("test_annotation_file",), **phase: Any) -> dict:
    config = builders.minimal_config()
    for key in drop:
        config["challenge_phases"][0].pop(key, None)
    config["challenge_phases"][0].update(data_package=package, **phase)
    return config


def problems(tmp_path: Path, config: dict) -> list[tuple[str, str | None, str, str]]:
    """(code, key, severity, message) of every problem reading the bundle finds; none when it reads."""
    folder = builders.write_folder(tmp_path / "b", config, omit=("annotations/test_annotations_devsplit.json",))
    try:
        with read_bundle(folder) as bundle:
            return [(p.code, p.key, p.severity, p.message) for p in bundle.warnings]
    except BundleError as exc:
        return [(p.code, p.key, p.severity, p.message) for p in exc.problems]


def errors(tmp_path: Path, config: dict) -> list[tuple[str, str | None, str]]:
    return [(code, key, message) for code, key, severity, message in problems(tmp_path, config) if severity == "error"]


def test_a_phase_takes_its_annotations_from_a_package(tmp_path: Path) -> None:
    config = config_with(dict(PACKAGE, test_inputs="./inputs//images.zip", case_metadata="metadata/cases.csv"))
    folder = builders.write_folder(tmp_path / "b", config, omit=("annotations/test_annotations_devsplit.json",))
    with read_bundle(folder) as bundle:
        phase = bundle.config.challenge_phases[0]
        ref = phase.data_package
        assert ref is not None and (ref.name, ref.version) == ("dr-screening-test", 2)
        assert ref.files() == {
            "annotations": "labels/test.json",
            "test_inputs": "inputs/images.zip",  # written as the package writes paths
            "case_metadata": "metadata/cases.csv",
        }
        assert phase.test_annotation_file is None and bundle.annotations == {}  # no file of the bundle is read
        assert bundle.case_metadata == {} and bundle.test_inputs == {}


def test_embedding_bundles_keep_working(tmp_path: Path) -> None:
    folder = builders.write_folder(tmp_path / "b", builders.minimal_config())
    with read_bundle(folder) as bundle:
        assert bundle.config.challenge_phases[0].data_package is None
        assert bundle.annotations == {1: "annotations/test_annotations_devsplit.json"}


@pytest.mark.parametrize(
    ("package", "key", "message"),
    [
        ("dr-screening-test", "challenge_phases.0.data_package", "valid dictionary"),
        (dict(PACKAGE, name="dr screening/../x"), "challenge_phases.0.data_package.name", "not a package name"),
        (dict(PACKAGE, name=""), "challenge_phases.0.data_package.name", "at least 1 character"),
        (dict(PACKAGE, name="x" * 101), "challenge_phases.0.data_package.name", "at most 100 characters"),
        (dict(PACKAGE, name="DR-Screening"), "challenge_phases.0.data_package.name", "not a package name"),
        (dict(PACKAGE, name="dr_screening"), "challenge_phases.0.data_package.name", "not a package name"),
        (dict(PACKAGE, name="-dr"), "challenge_phases.0.data_package.name", "not a package name"),
        ({"name": "p", "annotations": "labels/a.json"}, "challenge_phases.0.data_package.version", "is missing"),
        (dict(PACKAGE, version=0), "challenge_phases.0.data_package.version", "greater than or equal to 1"),
        (dict(PACKAGE, version=-3), "challenge_phases.0.data_package.version", "greater than or equal to 1"),
        (dict(PACKAGE, version=True), "challenge_phases.0.data_package.version", "is a boolean"),
        (dict(PACKAGE, version="latest"), "challenge_phases.0.data_package.version", "valid integer"),
        (dict(PACKAGE, version=2**40), "challenge_phases.0.data_package.version", "less than or equal to"),
        (dict(PACKAGE, annotations="/etc/passwd"), "challenge_phases.0.data_package.annotations", "absolute path"),
        (dict(PACKAGE, annotations="C:\\x.json"), "challenge_phases.0.data_package.annotations", "absolute path"),
        (dict(PACKAGE, annotations="labels/../../x"), "challenge_phases.0.data_package.annotations", "outside"),
        (dict(PACKAGE, annotations="./."), "challenge_phases.0.data_package.annotations", "names no file"),
        (dict(PACKAGE, annotations="  "), "challenge_phases.0.data_package.annotations", "empty file path"),
        (dict(PACKAGE, annotations="a\x00b"), "challenge_phases.0.data_package.annotations", "NUL"),
        (dict(PACKAGE, annotations="l/" + "x" * 300), "challenge_phases.0.data_package.annotations", "at most 300"),
        (dict(PACKAGE, test_inputs=["a"]), "challenge_phases.0.data_package.test_inputs", "valid string"),
    ],
)
def test_bad_shapes_are_refused_with_their_key(tmp_path: Path, package: Any, key: str, message: str) -> None:
    found = errors(tmp_path, config_with(package))
    assert [k for _, k, _ in found] == [key], found
    assert message in found[0][2]


def test_the_line_of_the_key_is_named(tmp_path: Path) -> None:
    folder = builders.write_folder(
        tmp_path / "b", config_with(dict(PACKAGE, version=0)), omit=("annotations/test_annotations_devsplit.json",)
    )
    with pytest.raises(BundleError) as caught:
        read_bundle(folder)
    problem = caught.value.errors[0]
    text = (folder / "challenge_config.yaml").read_text().splitlines()
    assert problem.line is not None and "version: 0" in text[problem.line - 1]


@pytest.mark.parametrize(
    ("package_key", "bundle_key", "value"),
    [
        ("annotations", "test_annotation_file", "annotations/test_annotations_devsplit.json"),
        ("test_inputs", "test_inputs", "inputs.zip"),
        ("case_metadata", "case_metadata_file", "cases.csv"),
    ],
)
def test_a_file_comes_from_the_bundle_or_the_package_not_both(
    tmp_path: Path, package_key: str, bundle_key: str, value: str
) -> None:
    role = {"annotations": "labels", "test_inputs": "inputs", "case_metadata": "metadata"}[package_key]
    package = {"name": "p", "version": 1, package_key: f"{role}/y.bin"}
    config = config_with(package, drop=(), **{bundle_key: value})
    found = [f for f in errors(tmp_path, config) if f[0] == "data_package_conflict"]
    assert [(code, key) for code, key, _ in found] == [
        ("data_package_conflict", f"challenge_phases.0.data_package.{package_key}")
    ]
    assert bundle_key in found[0][2] and f"data_package.{package_key}" in found[0][2]


@pytest.mark.parametrize(
    ("key", "path", "folder"),
    [
        ("annotations", "inputs/test.json", "labels/"),
        ("annotations", "test.json", "labels/"),
        ("test_inputs", "labels/images.zip", "inputs/"),
        ("case_metadata", "Metadata/cases.csv", "metadata/"),
    ],
)
def test_each_key_names_a_file_of_its_role(tmp_path: Path, key: str, path: str, folder: str) -> None:
    found = errors(tmp_path, config_with(dict(PACKAGE, **{key: path})))
    assert [(code, k) for code, k, _ in found] == [
        ("data_package_wrong_folder", f"challenge_phases.0.data_package.{key}")
    ]
    assert f"under {folder}" in found[0][2]


def test_a_package_that_names_no_file_is_refused(tmp_path: Path) -> None:
    found = errors(tmp_path, config_with({"name": "p", "version": 1}, drop=()))
    assert [(code, key) for code, key, _ in found] == [
        ("data_package_names_no_file", "challenge_phases.0.data_package")
    ]


def test_without_either_annotation_the_phase_is_refused(tmp_path: Path) -> None:
    found = errors(tmp_path, config_with({"name": "p", "version": 1, "test_inputs": "inputs/x.zip"}))
    assert ("missing_test_annotation_file", "challenge_phases.0.test_annotation_file") in [(c, k) for c, k, _ in found]
    assert "data_package.annotations" in next(m for c, _, m in found if c == "missing_test_annotation_file")


def test_package_inputs_outside_a_static_dataset_challenge_are_flagged(tmp_path: Path) -> None:
    found = problems(tmp_path, config_with(dict(PACKAGE, test_inputs="inputs/x.zip")))
    assert [(c, k, s) for c, k, s, _ in found if c == "test_inputs_unused"] == [
        ("test_inputs_unused", "challenge_phases.0.data_package.test_inputs", "warning")
    ]


def test_audit_subgroups_may_come_from_the_package_metadata(tmp_path: Path) -> None:
    audit = {"task": "binary", "threshold": 0.5, "subgroups": ["sex", "age_band"]}
    assert errors(tmp_path, config_with(dict(PACKAGE, case_metadata="metadata/cases.csv"), audit=audit)) == []
    found = errors(tmp_path, config_with(PACKAGE, audit=audit))
    assert [c for c, _, _ in found] == ["audit_subgroups_without_metadata"]
    assert "data_package.case_metadata" in found[0][2]


def test_the_schema_describes_the_key() -> None:
    schema = json_schema()
    phase = schema["$defs"]["Phase"]["properties"]
    assert "data_package" in phase and "data package" in phase["data_package"]["description"]
    ref = schema["$defs"]["DataPackageRef"]
    assert set(ref["properties"]) == {"name", "version", "annotations", "test_inputs", "case_metadata"}
    assert set(ref["required"]) == {"name", "version"}
    assert ref["properties"]["version"]["minimum"] == 1
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.validators.validator_for(schema)(schema)
    good = json.loads(json.dumps(config_with(PACKAGE), default=str))
    assert list(validator.iter_errors(good)) == []
    bad = json.loads(json.dumps(config_with(dict(PACKAGE, version=0)), default=str))
    found = list(validator.iter_errors(bad))
    assert [list(e.path) for e in found] == [["challenge_phases", 0, "data_package"]]
    assert "minimum" in {sub.validator for sub in found[0].context}
    assert ref["properties"]["name"]["pattern"] == "^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"


def test_assay_bundle_validate_checks_it_offline(tmp_path: Path) -> None:
    from assay.cli.main import app

    folder = builders.write_folder(
        tmp_path / "b",
        config_with(dict(PACKAGE, name="no spaces")),
        omit=("annotations/test_annotations_devsplit.json",),
    )
    result = CliRunner().invoke(app, ["bundle", "validate", str(folder), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert any(p["key"] == "challenge_phases.0.data_package.name" for p in report["problems"]), report
    good = builders.write_folder(
        tmp_path / "g", config_with(PACKAGE), omit=("annotations/test_annotations_devsplit.json",)
    )
    assert CliRunner().invoke(app, ["bundle", "validate", str(good)]).exit_code == 0
