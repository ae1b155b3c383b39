"""The audit summary document (assay.audit.summary): hand-computed figures, curves and matrices, the
settings' checks, JSON safety, reproducibility for a fixed seed, and the coverage of its intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.audit import AuditInputError, interval, summarise

# The ten cases of test_hand_computed: TP 3, FN 1, FP 1, TN 5 at 0.5.
REFERENCE = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
PROBABILITY = [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.05]
SEX = ["F", "M", "F", "M", "F", "M", "F", "M", "F", "F"]


def binary_rows() -> list[dict]:
    return [
        {"case_id": f"c{i}", "reference": r, "probability": p, "sex": s}
        for i, (r, p, s) in enumerate(zip(REFERENCE, PROBABILITY, SEX, strict=True))
    ]


def binary_settings(**changes) -> dict:
    return {"task": "binary", "threshold": 0.5, "bootstrap": {"resamples": 0}, **changes}


def test_binary_summary_holds_the_hand_computed_figures_calibration_and_roc():
    doc = summarise(binary_settings(), binary_rows())
    assert doc["task"] == "binary" and doc["n"] == 10
    headline = {name: figure["value"] for name, figure in doc["headline"].items()}
    assert headline["sensitivity"] == pytest.approx(3 / 4)
    assert headline["specificity"] == pytest.approx(5 / 6)
    assert headline["auroc"] == pytest.approx(21 / 24)
    assert doc["headline"]["sensitivity"] == {"value": 0.75, "low": None, "high": None, "n": 10, "reason": None}
    # Brier: mean (p - y)^2 = (.01 + .04 + .16 + .49 + .49 + .16 + .04 + .01 + .01 + .0025) / 10
    calibration = doc["calibration"]
    assert calibration["figures"]["brier"]["value"] == pytest.approx(1.4125 / 10)
    # ECE: bins 0-.1 {.05 .1 .1 | y 0}: 3/10 x .25/3; then one case each at .2 .3 .4 .6 .7 .8 .9
    assert calibration["figures"]["ece"]["value"] == pytest.approx(
        0.025 + 0.02 + 0.07 + 0.04 + 0.04 + 0.07 + 0.02 + 0.01
    )
    bins = calibration["reliability"]
    assert [b["n"] for b in bins] == [3, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    assert bins[0] == pytest.approx({"low": 0.0, "high": 0.1, "n": 3, "mean_probability": 0.25 / 3, "observed": 0.0})
    assert bins[9]["mean_probability"] is None and bins[9]["observed"] is None
    # Ranked: .9P .8P .7N .6P .4N .3P .2N .1N .1N .05N: one point per distinct score (the two .1 are one)
    roc = doc["curves"]["roc"]
    assert roc["fpr"] == pytest.approx([0, 0, 0, 1 / 6, 1 / 6, 2 / 6, 2 / 6, 3 / 6, 5 / 6, 1])
    assert roc["tpr"] == pytest.approx([0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1, 1])
    assert roc["reason"] is None
    assert doc["confusion"] is None
    assert doc["settings"] == {
        "task": "binary",
        "prediction": "probability",
        "threshold": 0.5,
        "subgroups": [],
        "min_group_size": 30,
        "bootstrap": {"resamples": 0, "seed": 0, "level": 0.95},
        "intervals": {},
    }


def test_ordinal_summary_has_the_confusion_matrix_and_counts_ungraded_cases():
    rows = [
        {"case_id": str(i), "reference": r, "prediction": p}
        for i, (r, p) in enumerate([(0, 0), (0, 1), (1, 1), (2, 2), (2, None), (3, 2)])
    ]
    settings = {"task": "ordinal", "grades": [0, 1, 2, 3], "referable_from": 2, "bootstrap": {"resamples": 0}}
    doc = summarise(settings, rows)
    assert doc["confusion"] == {
        "labels": [0, 1, 2, 3],
        "matrix": [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]],
        "ungraded": [0, 0, 1, 0],
    }
    assert doc["headline"]["coverage"]["value"] == pytest.approx(5 / 6)
    assert doc["headline"]["accuracy"]["value"] == pytest.approx(3 / 5)  # of the graded cases
    assert doc["calibration"] is None and doc["curves"] is None


def test_multiclass_and_regression_summaries():
    rows = [
        {"case_id": str(i), "reference": r, "label": p} for i, (r, p) in enumerate(zip("aabc", "abba", strict=True))
    ]
    settings = {"task": "multiclass", "grades": ["a", "b", "c"], "prediction": "label", "bootstrap": {"resamples": 0}}
    doc = summarise(settings, rows)
    assert doc["confusion"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 0]]}
    assert doc["headline"]["accuracy"]["value"] == 0.5
    assert doc["headline"]["recall:c"]["value"] == 0.0

    rows = [{"case_id": str(i), "reference": r, "prediction": p} for i, (r, p) in enumerate([(1, 2), (2, 2), (3, 5)])]
    doc = summarise({"task": "regression", "bootstrap": {"resamples": 0}}, rows)
    assert doc["headline"]["mae"]["value"] == pytest.approx(1.0)
    assert doc["headline"]["bias"]["value"] == pytest.approx(1.0)
    assert (doc["confusion"], doc["calibration"], doc["curves"]) == (None, None, None)


def test_subgroups_are_tabled_small_groups_suppressed_and_the_headline_is_the_overall_row():
    doc = summarise(
        binary_settings(subgroups=["sex"], min_group_size=5, bootstrap={"resamples": 50, "seed": 4}), binary_rows()
    )
    (table,) = doc["subgroups"]["attributes"]
    assert table["attribute"] == "sex"
    rows = {row["group"]: row for row in table["rows"]}
    assert (rows["F"]["n"], rows["F"]["suppressed"]) == (6, False)
    assert (rows["M"]["n"], rows["M"]["suppressed"], rows["M"]["figures"]) == (4, True, {})
    overall = doc["subgroups"]["overall"]
    assert {k: {**v, "reason": v.get("reason")} for k, v in overall.items()} == doc["headline"]


def test_a_subgroup_column_a_row_lacks_is_its_own_missing_group():
    rows = binary_rows()
    del rows[0]["sex"]
    doc = summarise(binary_settings(subgroups=["sex"], min_group_size=1), rows)
    groups = [row["group"] for row in doc["subgroups"]["attributes"][0]["rows"]]
    assert groups == ["(missing)", "F", "M"]


def test_one_reference_class_gives_json_with_reasons_never_nan():
    rows = [{"case_id": str(i), "reference": 1, "probability": p} for i, p in enumerate([0.9, 0.2, 0.7])]
    doc = summarise(binary_settings(bootstrap={"resamples": 20}), rows)
    text = json.dumps(doc, allow_nan=False)  # raises on NaN or infinity
    assert json.loads(text) == doc
    assert doc["headline"]["auroc"]["value"] is None and doc["headline"]["auroc"]["reason"]
    assert doc["curves"]["roc"] == {"fpr": [], "tpr": [], "reason": doc["curves"]["roc"]["reason"]}
    assert doc["curves"]["roc"]["reason"]
    assert interval(doc, "auroc") is None


def test_the_roc_curve_is_thinned_to_200_points_keeping_both_ends():
    rng = np.random.default_rng(5)
    reference = np.r_[np.ones(1000, int), np.zeros(1000, int)]
    probability = np.clip(0.5 + (reference - 0.5) * 0.3 + rng.normal(0, 0.3, 2000), 0, 1)
    rows = [
        {"case_id": str(i), "reference": int(r), "probability": float(p)}
        for i, (r, p) in enumerate(zip(reference, probability, strict=True))
    ]
    roc = summarise(binary_settings(), rows)["curves"]["roc"]
    assert 100 < len(roc["fpr"]) <= 200 and len(roc["fpr"]) == len(roc["tpr"])
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert roc["fpr"] == sorted(roc["fpr"]) and roc["tpr"] == sorted(roc["tpr"])


def test_the_same_seed_gives_the_same_document_and_another_seed_other_intervals():
    settings = binary_settings(subgroups=["sex"], min_group_size=2, bootstrap={"resamples": 200, "seed": 20261202})
    first = summarise(settings, binary_rows())
    assert summarise(settings, binary_rows()) == first
    other = summarise({**settings, "bootstrap": {"resamples": 200, "seed": 1}}, binary_rows())
    assert interval(other, "auroc") != interval(first, "auroc")
    assert other["headline"]["auroc"]["value"] == first["headline"]["auroc"]["value"]


def test_interval_reads_headline_and_calibration_figures():
    doc = summarise(
        binary_settings(bootstrap={"resamples": 100, "seed": 2}, intervals={"AUC": "auroc", "ECE": "ece"}),
        binary_rows(),
    )
    low, high = interval(doc, "auroc")
    assert (low, high) == (doc["headline"]["auroc"]["low"], doc["headline"]["auroc"]["high"])
    assert low <= doc["headline"]["auroc"]["value"] <= high
    assert interval(doc, "ece") == (
        doc["calibration"]["figures"]["ece"]["low"],
        doc["calibration"]["figures"]["ece"]["high"],
    )
    assert interval(doc, "no_such_figure") is None
    assert interval(summarise(binary_settings(), binary_rows()), "auroc") is None  # resamples 0: no interval


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ([("task", "binary")], "audit settings must be a mapping"),
        (
            {"task": "survival"},
            "audit.task must be one of ['binary', 'ordinal', 'multiclass', 'regression'], got 'survival'",
        ),
        ({"task": "binary"}, "audit.threshold is required for a binary task"),
        ({"task": "binary", "threshold": 1.0}, "audit.threshold must be a number between 0 and 1 (exclusive), got 1.0"),
        ({"task": "binary", "threshold": True}, "audit.threshold must be a number between 0 and 1"),
        ({"task": "binary", "threshold": 0.5, "grades": [0, 1]}, "audit.grades does not apply to a binary task"),
        ({"task": "ordinal", "grades": [0, 1, 2]}, "audit.referable_from is required for a ordinal task"),
        ({"task": "ordinal", "grades": [0, 1, 1], "referable_from": 1}, "audit.grades lists a grade twice"),
        (
            {"task": "ordinal", "grades": [0, 1, 2], "referable_from": 0},
            "audit.referable_from must be one of the grades above the lowest [1, 2], got 0",
        ),
        ({"task": "ordinal", "grades": [0, 1, 2], "referable_from": 5}, "above the lowest [1, 2], got 5"),
        ({"task": "multiclass", "grades": ["a"]}, "audit.grades must list at least two grades or labels"),
        ({"task": "multiclass", "grades": [[1], [2]]}, "audit.grades must be whole numbers or text"),
        ({"task": "regression", "threshold": 0.5}, "audit.threshold does not apply to a regression task"),
        ({"task": "regression", "tresh": 1}, "audit settings: unknown key(s) ['tresh']"),
        ({"task": "regression", "prediction": 3}, "audit.prediction must be the name of a row key, got 3"),
        ({"task": "regression", "subgroups": "sex"}, "audit.subgroups must be a list of column names, got 'sex'"),
        ({"task": "regression", "subgroups": ["sex", "sex"]}, "audit.subgroups names a column twice"),
        (
            {"task": "regression", "min_group_size": 0},
            "audit.min_group_size must be a whole number of at least 1, got 0",
        ),
        ({"task": "regression", "min_group_size": True}, "audit.min_group_size must be a whole number"),
        ({"task": "regression", "bootstrap": [1000]}, "audit.bootstrap must be a mapping"),
        ({"task": "regression", "bootstrap": {"resample": 5}}, "audit.bootstrap: unknown key(s) ['resample']"),
        (
            {"task": "regression", "bootstrap": {"resamples": 10_001}},
            "resamples must be a whole number from 0 to 10000, got 10001",
        ),
        ({"task": "regression", "bootstrap": {"resamples": 1.5}}, "resamples must be a whole number"),
        (
            {"task": "regression", "bootstrap": {"seed": -1}},
            "audit.bootstrap.seed must be a whole number from 0 to 2**63 - 1, got -1",
        ),
        (
            {"task": "regression", "bootstrap": {"level": 1}},
            "audit.bootstrap.level must be a number between 0 and 1 (exclusive), got 1",
        ),
        (
            {"task": "regression", "intervals": {"MAE": 3}},
            "audit.intervals must map leaderboard labels to figure names",
        ),
        (
            {"task": "regression", "intervals": {"MAE": "auroc"}},
            "audit.intervals names ['auroc'], which the regression task does not compute",
        ),
    ],
)
def test_malformed_settings_are_refused_naming_the_key(settings, message):
    rows = [{"case_id": str(i), "reference": i, "prediction": i + 1, "probability": 0.5} for i in range(3)]
    with pytest.raises(AuditInputError) as caught:
        summarise(settings, rows)
    assert message in str(caught.value)


def test_rows_without_the_settings_prediction_key_are_refused():
    rows = [{"case_id": "a", "reference": 1, "prediction": 0.4}]
    with pytest.raises(AuditInputError, match="row 0 has no 'probability'"):
        summarise(binary_settings(), rows)
    with pytest.raises(AuditInputError, match="there are no case rows"):
        summarise(binary_settings(), [])


def test_the_95_percent_interval_of_sensitivity_covers_the_true_value_in_about_95_percent_of_datasets():
    # 50 simulated test sets (fixed seeds) of 100 positives and 100 negatives from a model whose true
    # sensitivity is 0.8: the summary's stratified percentile interval should hold 0.8 in about 47 of them
    # (binomial sd ~1.5; the seeds make the count itself fixed). The kernel's own coverage is checked on 200
    # sets in test_bootstrap.py; this checks that the summary hands its intervals on unchanged.
    rng = np.random.default_rng(20261202)
    reference = np.r_[np.ones(100, int), np.zeros(100, int)]
    covered = 0
    for k in range(50):
        called = np.r_[rng.random(100) < 0.8, rng.random(100) < 0.1]
        rows = [
            {"case_id": str(i), "reference": int(r), "probability": 0.75 if c else 0.25}
            for i, (r, c) in enumerate(zip(reference, called, strict=True))
        ]
        doc = summarise(binary_settings(bootstrap={"resamples": 200, "seed": k}), rows)
        low, high = interval(doc, "sensitivity")
        covered += low <= 0.8 <= high
    assert 43 <= covered <= 50
