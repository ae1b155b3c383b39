"""Scores a JSON submission ``{case_id: grade 0-4 or null}`` against the reference grades.

Returns EvalAI's ``result`` and Assay's ``cases`` (one row per reference case: case_id, reference,
prediction). The rows carry no subgroup attributes: the platform joins them from the phase's hidden
case metadata, never from anything the participant sends.
"""

import json

from .grading import GRADES, figures

SPLIT = "test"


def _grade(case_id, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in GRADES:
        raise ValueError(f"case {case_id!r}: the grade must be one of {list(GRADES)} or null, not {value!r}")
    return value


def read_submission(path, reference):
    with open(path) as fh:
        try:
            submission = json.load(fh)
        except ValueError as exc:
            raise ValueError(f"the submission is not valid JSON ({exc})") from None
    if not isinstance(submission, dict):
        raise ValueError("the submission must be a JSON object mapping case ids to grades 0-4 (or null)")
    unknown = sorted(str(key) for key in submission if key not in reference)
    if unknown:
        shown = ", ".join(repr(key) for key in unknown[:5])
        raise ValueError(f"{len(unknown)} case id(s) are not in the test set, e.g. {shown}")
    return {case_id: _grade(case_id, value) for case_id, value in submission.items()}


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(test_annotation_file) as fh:
        reference = json.load(fh)
    predicted = read_submission(user_submission_file, reference)
    cases = [
        {"case_id": case_id, "reference": grade, "prediction": predicted.get(case_id)}
        for case_id, grade in reference.items()
    ]
    scores = figures(cases)
    graded = sum(1 for row in cases if row["prediction"] is not None)
    print(f"graded {graded} of {len(cases)} cases for phase {phase_codename}")
    result = [{SPLIT: scores}]
    return {"result": result, "submission_result": result[0], "cases": cases}
