"""A metric that cannot be computed is None with a reason — never a crash, never NaN in JSON."""

from __future__ import annotations

import json

import numpy as np

from assay.audit import BinaryTask, CalibrationTask, MulticlassTask, OrdinalTask, RegressionTask, figures


def as_json(task) -> dict:
    result = {name: figure.to_json() for name, figure in figures(task, resamples=50).items()}
    return json.loads(json.dumps(result, allow_nan=False))


def test_one_reference_class_leaves_the_comparisons_undefined():
    got = as_json(BinaryTask.of([1, 1, 1, 1], [0.9, 0.2, 0.7, 0.6]))
    assert got["sensitivity"]["value"] == 0.75 and got["sensitivity"]["low"] is not None
    for name in ("specificity", "balanced_accuracy", "auroc", "mcc"):
        assert got[name]["value"] is None and got[name]["low"] is None, name
    assert got["specificity"]["reason"] == "no negative reference cases"
    assert got["auroc"]["reason"] == "only one reference class: the metric compares positives with negatives"


def test_nobody_called_positive_leaves_ppv_undefined():
    got = as_json(BinaryTask.of([1, 0, 0, 1], [0.1, 0.2, 0.3, 0.4]))
    assert got["ppv"] == {
        "value": None,
        "low": None,
        "high": None,
        "n": 4,
        "reason": "no case is predicted positive at the threshold",
    }
    assert got["npv"]["value"] == 0.5


def test_a_constant_reference_has_no_r2():
    got = as_json(RegressionTask.of([3.0, 3.0, 3.0], [2.0, 3.0, 4.0]))
    assert got["r2"]["value"] is None
    assert got["r2"]["reason"] == "the reference is constant, so there is no variance to explain"
    assert got["mae"]["value"] == 2 / 3


def test_a_model_that_grades_nothing_has_zero_coverage_and_no_other_figure():
    got = as_json(OrdinalTask.of([0, 1, 2], [None, None, float("nan")], [0, 1, 2], 1))
    assert got["coverage"]["value"] == 0.0
    assert got["qwk"] == {
        "value": None,
        "low": None,
        "high": None,
        "n": 3,
        "reason": "the model graded none of the cases",
    }


def test_a_single_class_everywhere_has_no_kappa_and_no_calibration_fit():
    got = as_json(MulticlassTask.of(["a", "a"], ["a", "a"], ["a", "b"]))
    assert got["accuracy"]["value"] == 1.0 and got["kappa"]["value"] is None and got["recall:b"]["value"] is None
    calibration = as_json(CalibrationTask.of([0, 0, 0], [0.1, 0.2, 0.3]))
    assert calibration["slope"]["value"] is None and calibration["brier"]["value"] is not None


def test_separated_classes_leave_the_slope_undefined_in_resamples_not_a_crash():
    y = np.array([0] * 20 + [1] * 20)
    p = np.r_[np.linspace(0.05, 0.4, 20), np.linspace(0.6, 0.95, 20)]
    got = as_json(CalibrationTask.of(y, p))
    assert got["slope"] == {
        "value": None,
        "low": None,
        "high": None,
        "n": 40,
        "reason": "the probabilities separate the classes perfectly, so the calibration slope is infinite",
    }
    assert got["intercept"]["value"] == 0.0 and got["intercept"]["low"] < 0 < got["intercept"]["high"]
