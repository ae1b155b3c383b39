"""The phase key ``audit``: its types (model), the task's own keys, subgroups from the case metadata and
known figures (rules), with the line of the offending key."""

from __future__ import annotations

from typing import Any

import pytest

from assay.bundle import BundleError, parse_config
from assay.bundle.rules import AUDIT_FIGURES, Findings, audit_figures, check_audit_columns
from assay.bundle.yamlsafe import LineMap

from . import builders


def config_with(audit: dict[str, Any], **phase: Any) -> dict[str, Any]:
    config = builders.minimal_config()
    config["challenge_phases"][0].update(audit=audit, **phase)
    return config


def problems(audit: dict[str, Any], **phase: Any) -> list[tuple[str, str | None]]:
    """(code, key) of every error, or [] when the config parses."""
    try:
        parse_config(builders.dump_config(config_with(audit, **phase)))
    except BundleError as exc:
        return [(p.code, p.key) for p in exc.errors]
    return []


ORDINAL = {"task": "ordinal", "grades": [0, 1, 2, 3, 4], "referable_from": 2}


def test_a_full_ordinal_audit_parses_with_its_defaults():
    audit = {
        **ORDINAL,
        "subgroups": ["age_band", "sex"],
        "min_group_size": 10,
        "bootstrap": {"resamples": 1000, "seed": 20261202},
        "intervals": {"Score": "qwk", "Total": "referable_sensitivity"},
    }
    config, _, warnings = parse_config(
        builders.dump_config(config_with(audit, case_metadata_file="annotations/cases.csv"))
    )
    assert warnings == []
    settings = config.challenge_phases[0].audit
    assert settings.model_dump() == {
        **audit,
        "prediction": None,
        "threshold": None,
        "bootstrap": {"resamples": 1000, "seed": 20261202, "level": 0.95},
    }
    assert config.challenge_phases[0].model_dump()["audit"]["task"] == "ordinal"


def test_a_binary_audit_needs_its_threshold_and_nothing_of_the_graded_tasks():
    assert problems({"task": "binary", "threshold": 0.3, "intervals": {"Score": "auroc", "Total": "ece"}}) == []
    assert problems({"task": "binary"}) == [("audit_key_missing", "challenge_phases.0.audit.task")]
    assert problems({"task": "binary", "threshold": 0.5, "grades": [0, 1]}) == [
        ("audit_key_not_for_task", "challenge_phases.0.audit.grades")
    ]
    assert problems({"task": "binary", "threshold": 1}) == [("bad_value", "challenge_phases.0.audit.threshold")]
    assert problems({"task": "binary", "threshold": 0}) == [("bad_value", "challenge_phases.0.audit.threshold")]


@pytest.mark.parametrize(
    ("audit", "expected"),
    [
        ({"task": "ordinal", "grades": [0, 1, 2]}, [("audit_key_missing", "challenge_phases.0.audit.task")]),
        ({**ORDINAL, "referable_from": 0}, [("audit_bad_referable_from", "challenge_phases.0.audit.referable_from")]),
        ({**ORDINAL, "referable_from": 7}, [("audit_bad_referable_from", "challenge_phases.0.audit.referable_from")]),
        ({**ORDINAL, "grades": [0, 1, 1, 2]}, [("audit_bad_grades", "challenge_phases.0.audit.grades")]),
        ({"task": "multiclass", "grades": ["a"]}, [("audit_bad_grades", "challenge_phases.0.audit.grades")]),
        (
            {"task": "multiclass", "grades": ["a", "b"], "referable_from": "b"},
            [("audit_key_not_for_task", "challenge_phases.0.audit.referable_from")],
        ),
        ({"task": "regression", "threshold": 0.5}, [("audit_key_not_for_task", "challenge_phases.0.audit.threshold")]),
        ({"task": "survival"}, [("bad_value", "challenge_phases.0.audit.task")]),
        (
            {**ORDINAL, "bootstrap": {"resamples": 10_001}},
            [("bad_value", "challenge_phases.0.audit.bootstrap.resamples")],
        ),
        ({**ORDINAL, "bootstrap": {"level": 1.5}}, [("bad_value", "challenge_phases.0.audit.bootstrap.level")]),
        ({**ORDINAL, "min_group_size": 0}, [("bad_value", "challenge_phases.0.audit.min_group_size")]),
        (
            {**ORDINAL, "intervals": {"Score": "auroc"}},
            [("audit_unknown_figure", "challenge_phases.0.audit.intervals.Score")],
        ),
        (
            {**ORDINAL, "intervals": {"Accuracy": "qwk"}},
            [("audit_unknown_label", "challenge_phases.0.audit.intervals.Accuracy")],
        ),
        (
            {**ORDINAL, "subgroups": ["sex"]},
            [("audit_subgroups_without_metadata", "challenge_phases.0.audit.subgroups")],
        ),
    ],
)
def test_malformed_audit_settings_are_errors_at_their_key(audit, expected):
    got = problems(audit)
    assert [code for code, _ in got] == [code for code, _ in expected]
    assert [key.startswith(want) for (_, key), (_, want) in zip(got, expected, strict=True)] == [True] * len(expected)


def test_a_boolean_grade_is_refused_not_read_as_1():
    got = problems({**ORDINAL, "grades": [0, True, 2], "referable_from": 2})
    assert got and all(key.startswith("challenge_phases.0.audit.grades.1") for _, key in got)


def test_an_unknown_audit_key_is_a_warning_naming_the_closest_one():
    _, _, warnings = parse_config(builders.dump_config(config_with({**ORDINAL, "treshold": 0.5})))
    assert [(w.code, w.key) for w in warnings] == [("unknown_key", "challenge_phases.0.audit.treshold")]


def test_multiclass_intervals_may_name_a_per_class_recall():
    audit = {"task": "multiclass", "grades": ["benign", "malignant"], "intervals": {"Score": "recall:malignant"}}
    assert problems(audit) == []
    assert problems({**audit, "intervals": {"Score": "recall:other"}}) == [
        ("audit_unknown_figure", "challenge_phases.0.audit.intervals.Score")
    ]


def test_subgroups_must_be_columns_of_the_case_metadata_header():
    config, lines, _ = parse_config(
        builders.dump_config(config_with({**ORDINAL, "subgroups": ["sex", "camera"]}, case_metadata_file="cases.csv"))
    )
    findings = Findings(lines, "challenge_config.yaml")
    check_audit_columns(config, {1: ["age_band", "sex"]}, findings)
    assert [(p.code, p.key) for p in findings.problems] == [
        ("audit_subgroup_not_a_column", "challenge_phases.0.audit.subgroups")
    ]
    assert "'camera' is not a column of 'cases.csv' (age_band, sex)" in findings.problems[0].message
    findings = Findings(LineMap(), "challenge_config.yaml")
    check_audit_columns(config, {1: ["sex", "camera"]}, findings)
    assert findings.problems == []


def test_the_bundle_knows_the_figures_assay_audit_computes():
    audit = pytest.importorskip("assay.audit")
    tasks = {
        "binary": audit.BinaryTask.of([0, 1], [0.2, 0.8]).metrics
        + audit.CalibrationTask.of([0, 1], [0.2, 0.8]).metrics,
        "ordinal": audit.OrdinalTask.of([0, 1], [0, 1], [0, 1], 1).metrics,
        "regression": audit.RegressionTask.of([0, 1], [0, 1]).metrics,
    }
    for task, names in tasks.items():
        assert AUDIT_FIGURES[task] == tuple(names)
    multiclass = audit.MulticlassTask.of(["a", "b"], ["a", "b"], ["a", "b"]).metrics
    config, _, _ = parse_config(builders.dump_config(config_with({"task": "multiclass", "grades": ["a", "b"]})))
    assert audit_figures(config.challenge_phases[0]) == tuple(multiclass)
