"""The worker's report of per-case rows: split off the output, sent as their own part (gzip'd JSON lines in
base64); rows the contract refuses, or too many bytes of them, become the submission's reported failure."""

from __future__ import annotations

import base64
import json

import pytest

from assay.evaluation import EvaluationOutcome
from assay.evaluation.contract import decode_cases
from assay.worker import loop

RESULT = [{"test": {"Accuracy": 0.5}}]


def outcome(output: object) -> EvaluationOutcome:
    return EvaluationOutcome(
        ok=True, output=output, stdout="", stderr="", error=None, error_kind=None, duration=1.0, sandbox="none"
    )


def test_cases_are_their_own_part_of_the_report() -> None:
    rows = [{"case_id": "a", "reference": 1, "probability": float("nan")}, {"case_id": "b", "reference": 0}]
    report = loop._report(outcome({"result": RESULT, "cases": rows}))
    assert report["error"] is None
    assert report["output"] == {"result": RESULT}
    assert decode_cases(base64.b64decode(report["cases"])) == [
        {"case_id": "a", "reference": 1, "probability": None},
        {"case_id": "b", "reference": 0},
    ]
    json.dumps(report, allow_nan=False)  # what the HTTP client (and the outbox) carries


def test_no_cases_no_part() -> None:
    assert "cases" not in loop._report(outcome({"result": RESULT}))


def test_refused_rows_are_the_reported_failure() -> None:
    report = loop._report(outcome({"result": RESULT, "cases": [{"case_id": "a"}, {"case_id": "a"}]}))
    assert report["output"] is None and "cases" not in report
    assert report["error"] == "evaluate() returned 'cases'[1] repeats case_id 'a'; each case appears once"


def test_too_many_bytes_fail_before_the_server_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "MAX_CASES_GZIP_BYTES", 1024)
    rows = [{"case_id": f"c{i}", "note": f"{i * 7919:x}" * 20} for i in range(500)]
    report = loop._report(outcome({"result": RESULT, "cases": rows}))
    assert report["output"] is None and "cases" not in report
    assert report["error"].startswith("evaluate() returned 'cases' of ")


HOSTILE_OUTPUTS = [
    {"result": RESULT},
    {"result": [{"test": {"Accuracy": float("nan")}}], "submission_result": {"x": float("inf")}},
    {"result": [{"test": {"Accuracy": float("inf")}}]},
    {"result": RESULT, "cases": [{"case_id": "a"}, {"case_id": "a"}]},
    {"result": RESULT, "cases": "rows"},
    {"cases": [{"case_id": "a"}]},
    [RESULT],
    None,
]


@pytest.mark.parametrize("output", HOSTILE_OUTPUTS, ids=range(len(HOSTILE_OUTPUTS)))
def test_the_pool_and_the_report_apply_one_check(output: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's verdict (validate_output) and the report's come from one function, checked_result."""
    from assay.evaluation import contract

    verdict = contract.validate_output(output)
    report = loop._report(outcome(output))
    assert report["error"] == verdict
    assert (report["error_kind"] if verdict else None) == ("bad_output" if verdict else None)
    calls: list[object] = []
    real = contract.checked_result

    def spy(value: object, **kwargs: object):  # noqa: ANN202
        calls.append(value)
        return real(value, **kwargs)

    monkeypatch.setattr(contract, "checked_result", spy)
    monkeypatch.setattr(loop, "checked_result", spy)
    contract.validate_output(output)
    loop._report(outcome(output))
    assert calls == [output, output]
