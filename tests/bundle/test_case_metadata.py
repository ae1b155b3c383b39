"""The phase key ``case_metadata_file``: a CSV in the bundle whose header starts with case_id, checked when
the bundle is read (error ``bad_case_metadata`` with the file's line), its columns checked against the
audit's subgroups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.bundle import BundleError, json_schema, read_bundle

from . import builders

CSV = "case_id,age_band,sex\nc1,40-60,F\nc2,60+,M\n"


def bundle_with(tmp_path: Path, metadata: bytes | str | None, rel: str = "annotations/cases.csv", **phase: Any) -> Path:
    config = builders.minimal_config()
    config["challenge_phases"][0].update(case_metadata_file=rel, **phase)
    extra = {} if metadata is None else {rel: metadata}
    return builders.write_folder(tmp_path / "b", config, extra=extra)


def errors(tmp_path: Path, metadata: bytes | str | None, **kwargs: Any) -> list[tuple[str, str | None, str]]:
    try:
        with read_bundle(bundle_with(tmp_path, metadata, **kwargs)):
            return []
    except BundleError as exc:
        return [(p.code, p.key, p.message) for p in exc.errors]


def test_a_good_file_is_read_and_kept_apart(tmp_path: Path) -> None:
    with read_bundle(bundle_with(tmp_path, "\ufeff" + CSV)) as bundle:
        assert bundle.case_metadata == {bundle.config.challenge_phases[0].id: "annotations/cases.csv"}
        assert bundle.config.challenge_phases[0].case_metadata_file == "annotations/cases.csv"
        assert "annotations/cases.csv" not in bundle.annotations.values()


@pytest.mark.parametrize(
    ("metadata", "rel", "message"),
    [
        ("id,age\nc1,3\n", "annotations/cases.csv", "line 1: the header must start with the column case_id"),
        ("", "annotations/cases.csv", "line 1: the header must start with the column case_id (found nothing)"),
        ("case_id,age,age\nc1,3,4\n", "annotations/cases.csv", "line 1: every column needs a name of its own"),
        ("case_id,age\nc1,3\nc1,4\n", "annotations/cases.csv", "line 3: case_id 'c1' appears twice"),
        ("case_id,age\n,3\n", "annotations/cases.csv", "line 2: the case_id is empty"),
        ("case_id,age\nc1,3,extra\n", "annotations/cases.csv", "line 2: 3 fields, but the header has 2"),
        (b"case_id,age\nc1,\xff\n", "annotations/cases.csv", "is not UTF-8 text"),
        (CSV, "annotations/cases.json", "must be a .csv file"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(tmp_path: Path, metadata: str | bytes, rel: str, message: str) -> None:
    found = errors(tmp_path, metadata, rel=rel)
    assert [(code, key) for code, key, _ in found] == [("bad_case_metadata", "challenge_phases.0.case_metadata_file")]
    assert message in found[0][2]


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    found = errors(tmp_path, None)
    assert [(code, key) for code, key, _ in found] == [("file_not_found", "challenge_phases.0.case_metadata_file")]


def test_audit_subgroups_must_be_columns_of_the_file(tmp_path: Path) -> None:
    audit = {"task": "ordinal", "grades": [0, 1, 2], "referable_from": 1, "subgroups": ["age_band", "camera"]}
    found = errors(tmp_path, CSV, audit=audit)
    assert [(code, key) for code, key, _ in found] == [
        ("audit_subgroup_not_a_column", "challenge_phases.0.audit.subgroups")
    ]
    assert "'camera' is not a column" in found[0][2]


def test_the_schema_names_the_key() -> None:
    phase = json_schema()["$defs"]["Phase"]["properties"]
    assert "case_metadata_file" in phase and "never sent to workers" in phase["case_metadata_file"]["description"]
