"""Scores a JSON submission ``{case_id: probability of malignancy}`` against the reference diagnoses.

Every test case needs a probability in [0, 1]. Returns EvalAI's ``result`` and Assay's ``cases`` (one
row per case: case_id, reference 1 = malignant / 0 = benign, probability). The rows carry no subgroup
attributes: the platform joins them from the phase's hidden case metadata.
"""

import json
import math

from .binary import figures

SPLIT = "test"


def _probability(case_id, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"case {case_id!r}: the probability must be a number in [0, 1], not {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"case {case_id!r}: the probability {value!r} is outside [0, 1]")
    return float(value)


def read_submission(path, reference):
    with open(path) as fh:
        try:
            submission = json.load(fh)
        except ValueError as exc:
            raise ValueError(f"the submission is not valid JSON ({exc})") from None
    if not isinstance(submission, dict):
        raise ValueError("the submission must be a JSON object mapping case ids to probabilities of malignancy")
    unknown = sorted(str(key) for key in submission if key not in reference)
    missing = [case_id for case_id in reference if case_id not in submission]
    for what, ids in (("are not in the test set", unknown), ("have no probability", missing)):
        if ids:
            shown = ", ".join(repr(case_id) for case_id in ids[:5])
            raise ValueError(f"{len(ids)} case id(s) {what}, e.g. {shown}")
    return {case_id: _probability(case_id, value) for case_id, value in submission.items()}


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(test_annotation_file) as fh:
        reference = json.load(fh)
    probabilities = read_submission(user_submission_file, reference)
    cases = [
        {"case_id": case_id, "reference": label, "probability": probabilities[case_id]}
        for case_id, label in reference.items()
    ]
    print(f"scored {len(cases)} cases for phase {phase_codename}")
    result = [{SPLIT: figures(cases)}]
    return {"result": result, "submission_result": result[0], "cases": cases}
