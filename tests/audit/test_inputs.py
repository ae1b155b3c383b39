"""Malformed per-case data gets an error that names the column, the case and the rule."""

from __future__ import annotations

import math

import pytest

from assay.audit import (
    AuditInputError,
    BinaryTask,
    CalibrationTask,
    Figure,
    MulticlassTask,
    OrdinalTask,
    RegressionTask,
)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: BinaryTask.of([1, 0, 1], [0.2, 0.3]),
            "every column needs one value per case, but reference has 3, probability has 2",
        ),
        (lambda: BinaryTask.of([1, 0], [0.2, 1.2]), r"probability\[1\] = 1.2 is outside \[0, 1\]"),
        (lambda: BinaryTask.of([1, 2], [0.2, 0.3]), r"reference\[1\] = 2.0: a binary reference is 0 or 1"),
        (lambda: BinaryTask.of([1, 0], [0.2, float("nan")]), r"probability\[1\] = nan is not a finite number"),
        (lambda: BinaryTask.of([1, 0], [0.2, None]), r"probability\[1\] is missing"),
        (lambda: BinaryTask.of([1, 0], ["0.2", "high"]), r"probability\[1\] = 'high' is not a number"),
        (lambda: BinaryTask.of([], []), "reference is empty: there are no cases to score"),
        (lambda: BinaryTask.of([[1, 0]], [[0.1, 0.2]]), r"reference must be one value per case \(a 1-D sequence\)"),
        (lambda: BinaryTask.of([1, 0], [0.2, 0.3], threshold=2), r"threshold must be within \[0, 1\], got 2"),
        (
            lambda: OrdinalTask.of([0, 7], [0, 1], [0, 1, 2], 1),
            r"reference\[1\] = 7 is not one of the declared labels \[0, 1, 2\]",
        ),
        (
            lambda: OrdinalTask.of([0, 1], [0, "2"], [0, 1, 2], 1),
            r"prediction\[1\] = '2' is not one of the declared labels",
        ),
        (lambda: OrdinalTask.of([0, None], [0, 1], [0, 1, 2], 1), r"reference\[1\] is missing"),
        (
            lambda: MulticlassTask.of(["a", ["b"]], ["a", "a"], ["a", "b"]),
            r"reference\[1\] = \['b'\] is not one of the declared labels",
        ),
        (
            lambda: OrdinalTask.of([0, 1], [0, 1], [0, 1, 2], 0),
            r"referable_from must be one of the grades above the lowest \[1, 2\], got 0",
        ),
        (lambda: MulticlassTask.of(["a"], ["b"], ["a", "a"]), r"labels declares a label twice: \['a', 'a'\]"),
        (lambda: MulticlassTask.of(["a"], ["a"], ["a"]), r"labels must declare at least two labels, got \['a'\]"),
        (lambda: RegressionTask.of([1.0, math.inf], [1.0, 2.0]), r"reference\[1\] = inf is not a finite number"),
        (lambda: CalibrationTask.of([0, 1], [0.1, 0.9], bins=0), "bins must be a whole number of at least 1, got 0"),
    ],
)
def test_malformed_input_is_refused_with_a_clear_error(build, message):
    with pytest.raises(AuditInputError, match=message):
        build()


def test_grades_read_back_as_floats_or_booleans_still_name_their_label():
    assert OrdinalTask.of([0.0, 2.0], [1.0, 2], [0, 1, 2], 1).prediction.tolist() == [1, 2]
    assert BinaryTask.of([True, False], [0.7, 0.2]).reference.tolist() == [1, 0]


def test_a_figure_never_carries_nan_or_infinity():
    figure = Figure(float("nan"), float("-inf"), 0.5, n=3, reason="x")
    assert figure.to_json() == {"value": None, "low": None, "high": 0.5, "n": 3, "reason": "x"}
