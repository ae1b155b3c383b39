"""Every metric on small cases whose confusion matrices are worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from assay.audit import BinaryTask, CalibrationTask, MulticlassTask, OrdinalTask, RegressionTask


def values(task) -> dict[str, float | None]:
    return {name: estimate.value for name, estimate in task.point().items()}


def test_binary_at_the_declared_threshold():
    # Called positive at p >= 0.5:   reference 1: 0.9 0.8 0.6 | 0.3      → TP 3, FN 1
    #                                reference 0: 0.7 | 0.4 0.2 0.1 0.1 0.05 → FP 1, TN 5
    task = BinaryTask.of([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.05])
    assert task.confusion() == {"tp": 3, "fn": 1, "fp": 1, "tn": 5}
    assert values(task) == pytest.approx(
        {
            "sensitivity": 3 / 4,
            "specificity": 5 / 6,
            "ppv": 3 / 4,
            "npv": 5 / 6,
            "balanced_accuracy": (3 / 4 + 5 / 6) / 2,
            "f1": 2 * 3 / (2 * 3 + 1 + 1),
            "mcc": (3 * 5 - 1 * 1) / math.sqrt(4 * 4 * 6 * 6),
            # pairs (positive, negative) ranked right: 0.9→6, 0.8→6, 0.6→5 (not 0.7), 0.3→4 = 21 of 24
            "auroc": 21 / 24,
            # precision at each positive going down the ranking: 1/1, 2/2, 3/4, 4/6
            "auprc": (1 + 1 + 3 / 4 + 4 / 6) / 4,
        }
    )


def test_binary_threshold_moves_the_calls():
    # At 0.25 the 0.3 positive and the 0.4 and 0.7 negatives are called positive: TP 4, FP 2.
    task = BinaryTask.of([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.05], 0.25)
    assert task.confusion() == {"tp": 4, "fn": 0, "fp": 2, "tn": 4}
    assert values(task)["specificity"] == pytest.approx(4 / 6)


def test_ordinal_grading_with_an_ungraded_case():
    # Grades 0-2, referable ≥ 1; the last case is ungraded, so the rest are over 5 cases.
    # Confusion (rows reference, columns prediction): [[1,1,0],[0,1,1],[0,0,1]]; rows 2,2,1; columns 1,2,2.
    # Quadratic cost observed: 1 + 1 = 2; expected: Σ w_ij row_i col_j / 5 = (4+16+2+4+4+2)/5 = 6.4.
    task = OrdinalTask.of([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, None], grades=[0, 1, 2], referable_from=1)
    assert values(task) == pytest.approx(
        {
            "qwk": 1 - 2 / 6.4,
            "accuracy": 3 / 5,
            "referable_sensitivity": 3 / 3,
            "referable_specificity": 1 / 2,
            "coverage": 5 / 6,
        }
    )


def test_multiclass_with_named_labels():
    # recall a 1/2, b 2/2, c 1/2; F1 a 2·1/(2+2), b 2·2/(2+3), c 2·1/(2+1); kappa (4/6 − 12/36)/(1 − 12/36)
    task = MulticlassTask.of(list("aabbcc"), list("abbbca"), labels=["a", "b", "c"])
    assert values(task) == pytest.approx(
        {
            "accuracy": 4 / 6,
            "balanced_accuracy": 2 / 3,
            "macro_f1": (2 / 4 + 4 / 5 + 2 / 3) / 3,
            "kappa": 0.5,
            "recall:a": 0.5,
            "recall:b": 1.0,
            "recall:c": 0.5,
        }
    )


def test_regression():
    # errors 1, 0, −1, 2; the reference's squared deviations from 2.5 add to 5
    task = RegressionTask.of([1, 2, 3, 4], [2, 2, 2, 6])
    assert values(task) == pytest.approx({"mae": 1.0, "rmse": math.sqrt(6 / 4), "bias": 0.5, "r2": 1 - 6 / 5})


def test_calibration_scores_and_bins():
    # two bins: [0, .5] holds .2 and .4 (mean .3, no positive), (.5, 1] holds .6 and .8 (mean .7, all positive)
    task = CalibrationTask.of([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.4], bins=2)
    got = values(task)
    assert got["ece"] == pytest.approx((2 * 0.3 + 2 * 0.3) / 4)
    assert got["brier"] == pytest.approx((0.04 + 0.04 + 0.16 + 0.16) / 4)
    assert got["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert [b.to_json() for b in task.reliability()] == [
        {"low": 0.0, "high": 0.5, "n": 2, "mean_probability": pytest.approx(0.3), "observed_fraction": 0.0},
        {"low": 0.5, "high": 1.0, "n": 2, "mean_probability": pytest.approx(0.7), "observed_fraction": 1.0},
    ]
