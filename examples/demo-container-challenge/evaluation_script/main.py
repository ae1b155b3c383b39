"""Scores the container's ``{"predictions": [...]}`` (one digit sum per input line) against the labels.

The labels (``{"digit_sums": [...]}``) stay here, outside the participant's container: it only ever
sees the inputs. A wrong shape is an error naming what was expected, so the participant can fix it.
"""

import json
import math


def _predictions(submission, expected):
    if not isinstance(submission, dict) or not isinstance(submission.get("predictions"), list):
        raise ValueError('submission.json must be {"predictions": [number, ...]}, one per input line')
    predictions = submission["predictions"]
    if len(predictions) != expected:
        raise ValueError(f"expected {expected} predictions (one per input line), got {len(predictions)}")
    for i, value in enumerate(predictions):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"prediction {i} is {value!r}, not a number")
    return predictions


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(test_annotation_file) as fh:
        labels = json.load(fh)["digit_sums"]
    with open(user_submission_file) as fh:
        submission = json.load(fh)
    predictions = _predictions(submission, len(labels))
    exact = sum(1 for p, y in zip(predictions, labels) if p == y)
    metrics = {
        "Accuracy": exact / len(labels),
        "MAE": sum(abs(p - y) for p, y in zip(predictions, labels)) / len(labels),
    }
    print(f"scored {len(predictions)} predictions for phase {phase_codename}")
    result = [{"public": metrics}]
    return {"result": result, "submission_result": result[0]}
