"""The one result contract (``assay.evaluation.contract.check_output``): what the worker sends and the
server stores. NaN is an undefined metric (null), infinities and non-numbers fail with the split and
label named, free-form JSON loses its non-finite numbers, oversized outputs are refused."""

from __future__ import annotations

import json
import math

import pytest

from assay.evaluation.contract import (
    MAX_DEPTH,
    MAX_METRICS,
    UNDEFINED,
    ResultError,
    check_output,
    describe_result,
    display_metric,
    metric_value,
    validate_output,
)

NAN = float("nan")
INF = float("inf")


def test_nan_is_an_undefined_metric_carried_as_null() -> None:
    out = check_output({"result": [{"test": {"Sensitivity": NAN, "Specificity": 0.9, "Count": 3}}]})
    assert out == {"result": [{"test": {"Sensitivity": None, "Specificity": 0.9, "Count": 3.0}}]}
    assert isinstance(out["result"][0]["test"]["Count"], float)
    json.dumps(out, allow_nan=False)  # strict JSON: what the worker sends


def test_null_and_numeric_strings_are_accepted_like_evalai() -> None:
    out = check_output({"result": [{"s": {"a": None, "b": "0.25", "c": "nan"}}]})
    assert out["result"] == [{"s": {"a": None, "b": 0.25, "c": None}}]


@pytest.mark.parametrize(
    "value, message",
    [
        (
            INF,
            "evaluate() returned split 'test' metric 'MAE' = inf; a metric must be a finite number "
            "(return NaN for an undefined metric: it is shown as '—' and ranked last)",
        ),
        (
            -INF,
            "evaluate() returned split 'test' metric 'MAE' = -inf; a metric must be a finite number "
            "(return NaN for an undefined metric: it is shown as '—' and ranked last)",
        ),
        (1.7e308 * 20, "evaluate() returned split 'test' metric 'MAE' = inf; a metric must be a finite number"),
        ("1e999", "evaluate() returned split 'test' metric 'MAE' = inf; a metric must be a finite number"),
        (10**400, "evaluate() returned split 'test' metric 'MAE' = 1000000000"),
        ("high", "evaluate() returned split 'test' metric 'MAE' = 'high', which is not a number"),
        (True, "evaluate() returned split 'test' metric 'MAE' = True, which is not a number"),
        ([0.5], "evaluate() returned split 'test' metric 'MAE' = [0.5], which is not a number"),
        ({"mean": 1}, "evaluate() returned split 'test' metric 'MAE' = {'mean': 1}, which is not a number"),
    ],
)
def test_unstorable_metrics_fail_naming_split_and_label(value, message: str) -> None:
    with pytest.raises(ResultError) as caught:
        check_output({"result": [{"test": {"MAE": value}}]})
    assert str(caught.value).startswith(message)


def test_a_huge_integer_is_too_large() -> None:
    with pytest.raises(ResultError, match=r"= 10{76}\.\.\., which is too large for a number$"):
        check_output({"result": [{"test": {"MAE": 10**400}}]})


def test_error_bars_follow_the_same_rules() -> None:
    out = check_output({"result": [{"s": {"a": 1}}], "error": [{"s": {"error_a": NAN}}]})
    assert out["error"] == [{"s": {"error_a": None}}]
    with pytest.raises(ResultError) as caught:
        check_output({"result": [{"s": {"a": 1}}], "error": [{"s": {"error_a": INF}}]})
    assert str(caught.value).startswith("evaluate() returned error bars of split 's' metric 'error_a' = inf;")


def test_free_form_keys_lose_non_finite_numbers_and_keep_everything_else() -> None:
    output = {
        "result": [{"s": {"a": 1}}],
        "submission_result": {"per_case": [1.0, NAN, INF, -INF, "x", None, True], "nested": {"v": NAN}},
        "submission_metadata": {"threshold": INF, "note": "bad \ud800 text"},
        "extra": NAN,
    }
    out = check_output(output)
    assert out["submission_result"] == {"per_case": [1.0, None, None, None, "x", None, True], "nested": {"v": None}}
    assert out["submission_metadata"] == {"threshold": None, "note": "bad ? text"}
    assert out["extra"] is None
    json.dumps(out, allow_nan=False).encode("utf-8")  # sendable


def test_shapes_are_named() -> None:
    cases = {
        "evaluate() returned NoneType, not a dict with a 'result' key": None,
        "evaluate() returned no 'result' key": {},
        "evaluate() returned 'result' as dict; EvalAI expects a list of {split: metrics}": {"result": {"s": {}}},
        "evaluate() returned result[0] that is not a {split: metrics} dict": {"result": [[]]},
        "evaluate() returned result for split 's' as list, not a {label: number} dict": {"result": [{"s": [1]}]},
    }
    for message, output in cases.items():
        assert validate_output(output) == message


def test_oversized_outputs_are_refused() -> None:
    many = {f"label{i}": 0.5 for i in range(MAX_METRICS + 1)}
    with pytest.raises(ResultError) as caught:
        check_output({"result": [{"s": many}]})
    assert str(caught.value) == (
        f"evaluate() returned more than {MAX_METRICS} metric values; a leaderboard shows a few labels per split "
        "(put per-sample details in 'submission_result' or stdout)"
    )
    big = {"result": [{"s": {"a": 1}}], "submission_result": ["x" * 1024] * 5000}
    with pytest.raises(ResultError) as caught:
        check_output(big)
    assert str(caught.value) == (
        "evaluate() returned 4.9 MiB of JSON; at most 4 MiB can be stored "
        "(write large per-sample details to stdout instead)"
    )
    deep: object = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ResultError) as caught:
        check_output({"result": [], "submission_metadata": deep})
    assert str(caught.value) == f"evaluate() returned 'submission_metadata' is nested more than {MAX_DEPTH} levels deep"


def test_metric_value_and_display() -> None:
    assert metric_value(NAN, "x") is None and metric_value(None, "x") is None
    assert metric_value(3, "x") == 3.0 and math.isclose(metric_value("0.1", "x") or 0, 0.1)
    assert UNDEFINED == "—"
    assert display_metric(None) == "—" and display_metric(None, 3) == "—"
    assert display_metric(0.123456, 2) == "0.12" and display_metric(2, 0) == "2"
    assert display_metric(NAN, 2) == "—" and display_metric(True, 2) == "—"
    result = [{"dev": {"a": None, "b": 0.25}}, {"test": {"a": 1}}]
    assert describe_result(result) == "dev: a=—, b=0.25; test: a=1"
    assert describe_result(None) == "" and describe_result("odd") == ""


def test_the_demo_container_challenges_overflowing_mae_fails_with_the_reason(pool, tmp_path) -> None:
    """The issue's reproduction: 20 predictions of 1.7e308 (each finite, so the script accepts them)
    make the demo container challenge's own script return an MAE of inf."""
    from pathlib import Path

    from assay.evaluation import EvaluationJob
    from assay.evaluation.scripts import zip_folder

    bundle = Path(__file__).resolve().parents[2] / "examples" / "demo-container-challenge"
    submission = tmp_path / "submission.json"
    submission.write_text(json.dumps({"predictions": [1.7e308] * 20}))
    job = EvaluationJob(
        key="demo-container-mae",
        script_zip=zip_folder(bundle / "evaluation_script", tmp_path / "zips"),
        annotation_file=bundle / "annotations" / "digit_sums.json",
        submission_file=submission,
        phase_codename="container",
    )
    outcome = pool.evaluate(job)
    assert not outcome.ok and outcome.error_kind == "bad_output"
    assert outcome.error == (
        "evaluate() returned split 'public' metric 'MAE' = inf; a metric must be a finite number "
        "(return NaN for an undefined metric: it is shown as '—' and ranked last)"
    )
