"""The Assay output key ``intervals`` (issue 14): checked by the one result contract, so worker and server
refuse the same bad intervals with a sentence naming the split and label."""

from __future__ import annotations

import math

import pytest

from assay.evaluation.contract import MAX_METRICS, ResultError, check_output

RESULT = [{"test_split": {"Accuracy": 0.77, "F1": 0.6}}]


def test_good_intervals_are_kept_as_floats():
    clean = check_output({"result": RESULT, "intervals": [{"test_split": {"Accuracy": [0.71, "0.83"], "F1": (0, 1)}}]})
    assert clean["intervals"] == [{"test_split": {"Accuracy": [0.71, 0.83], "F1": [0.0, 1.0]}}]
    assert "intervals" not in check_output({"result": RESULT})
    assert "intervals" not in check_output({"result": RESULT, "intervals": None})


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        ({"test_split": {}}, "'intervals' that is not a list"),
        ([["test_split"]], "'intervals' that is not a list"),
        ([{"other_split": {"Accuracy": [0.1, 0.2]}}], "split 'other_split', which has no result"),
        ([{"test_split": [0.1, 0.2]}], "intervals for split 'test_split' that are not"),
        ([{"test_split": {"Loss": [0.1, 0.2]}}], "metric 'Loss', which is not in that split's result"),
        ([{"test_split": {"Accuracy": [0.9, 0.1]}}], "metric 'Accuracy' with low 0.9 above high 0.1"),
        ([{"test_split": {"Accuracy": [0.1, math.inf]}}], "a metric must be a finite number"),
        ([{"test_split": {"Accuracy": [math.nan, 0.2]}}], "undefined end"),
        ([{"test_split": {"Accuracy": [None, 0.2]}}], "undefined end"),
        ([{"test_split": {"Accuracy": [0.1]}}], "that is not [low, high]"),
        ([{"test_split": {"Accuracy": 0.1}}], "that is not [low, high]"),
        ([{"test_split": {"Accuracy": ["a", "b"]}}], "which is not a number"),
        ([{"test_split": {"Accuracy": [True, 1]}}], "which is not a number"),
        ([{"test_split": {f"L{i}": [0, 1] for i in range(MAX_METRICS)}}], f"more than {MAX_METRICS} intervals"),
    ],
)
def test_bad_intervals_are_refused_with_a_clear_error(intervals, message):
    with pytest.raises(ResultError) as refused:
        check_output({"result": RESULT, "intervals": intervals})
    assert message in str(refused.value)
