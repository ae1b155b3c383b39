"""Scores a JSON submission ``{item_id: 0|1}`` on the phase's public and private splits."""

import json

from .metrics import accuracy, f1_positive


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(test_annotation_file) as fh:
        annotations = json.load(fh)
    with open(user_submission_file) as fh:
        submission = json.load(fh)
    if not isinstance(submission, dict):
        raise ValueError("the submission must be a JSON object mapping item ids to 0 or 1")
    predicted = {str(k): int(v) for k, v in submission.items()}
    splits = ["public"] if phase_codename == "dev" else ["public", "private"]
    result = [
        {split: {"Accuracy": accuracy(annotations[split], predicted), "F1": f1_positive(annotations[split], predicted)}}
        for split in splits
    ]
    print(f"scored {len(predicted)} predictions for phase {phase_codename}")
    return {"result": result, "submission_result": result[0]}
