"""Per-case rows (the Assay key ``cases`` of evaluate()'s output): checked by the one result contract,
split off the stored output (it stays small and may be shown to participants), and carried as gzip'd
JSON lines. Malformed rows fail the submission with a reason naming the row and the key."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from assay.evaluation.contract import (
    MAX_CASE_KEYS,
    MAX_CASE_TEXT,
    MAX_CASES,
    ResultError,
    check_cases,
    check_output,
    decode_cases,
    encode_cases,
    split_cases,
    validate_output,
)

RESULT = [{"test": {"Accuracy": 0.5}}]


def test_cases_are_split_off_and_checked() -> None:
    rows = [
        {"case_id": "c001", "reference": 3, "prediction": 2, "probability": float("nan"), "note": None},
        {"case_id": 7, "reference": 1, "prediction": 1, "probability": 0.25, "flag": True},
    ]
    rest, cases = split_cases({"result": RESULT, "cases": rows, "submission_metadata": {"a": 1}})
    assert rest == {"result": RESULT, "submission_metadata": {"a": 1}}
    assert cases == [
        {"case_id": "c001", "reference": 3, "prediction": 2, "probability": None, "note": None},
        {"case_id": "7", "reference": 1, "prediction": 1, "probability": 0.25, "flag": True},
    ]


def test_an_output_without_cases_is_unchanged() -> None:
    output = {"result": RESULT}
    assert split_cases(output) == (output, None)
    assert split_cases({"result": RESULT, "cases": None}) == ({"result": RESULT}, None)
    assert check_output(output) == {"result": [{"test": {"Accuracy": 0.5}}]}


def test_the_stored_output_never_carries_cases() -> None:
    rows = [{"case_id": f"c{i}", "reference": i % 2, "text": "x" * 900} for i in range(10_000)]  # ~9 MiB as JSON
    out = check_output({"result": RESULT, "cases": rows})
    assert out == {"result": [{"test": {"Accuracy": 0.5}}]}  # not counted against the 4 MiB output cap
    assert validate_output({"result": RESULT, "cases": rows}) is None


def test_numpy_scalars_are_plain_values() -> None:
    rows = check_cases([{"case_id": np.int64(4), "p": np.float32(0.5), "y": np.int64(1), "ok": np.bool_(True)}])
    assert rows == [{"case_id": "4", "p": 0.5, "y": 1, "ok": True}]
    assert type(rows[0]["y"]) is int
    json.dumps(rows, allow_nan=False)


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        ({"c1": {"reference": 1}}, "returned 'cases' as dict; it must be a list of rows"),
        ("c1,1,0", "returned 'cases' as str"),
        ([["c1", 1, 0]], "'cases'[0] as list, not an object"),
        ([{"reference": 1}], "'cases'[0] has no 'case_id'"),
        ([{"case_id": ""}], "'cases'[0] has no 'case_id'"),
        ([{"case_id": True}], "'cases'[0] has no 'case_id'"),
        ([{"case_id": 1.5}], "'cases'[0] has no 'case_id'"),
        ([{"case_id": "a"}, {"case_id": "b"}, {"case_id": "a"}], "'cases'[2] repeats case_id 'a'"),
        ([{"case_id": 1}, {"case_id": "1"}], "'cases'[1] repeats case_id '1'"),
        ([{"case_id": "a", "scores": [0.1, 0.9]}], "'cases'[0] (case 'a') key 'scores' = [0.1, 0.9]; a case value"),
        ([{"case_id": "a", "meta": {"age": 3}}], "key 'meta' = {'age': 3}; a case value must be text"),
        ([{"case_id": "a", "p": float("inf")}], "key 'p' = inf; a value must be finite"),
        ([{"case_id": "a", "p": float("-inf")}], "key 'p' = -inf; a value must be finite"),
        ([{"case_id": "a", "note": "x" * (MAX_CASE_TEXT + 1)}], f"key 'note' is {MAX_CASE_TEXT + 1} characters long"),
        ([{"case_id": "x" * (MAX_CASE_TEXT + 1)}], f"case_id longer than {MAX_CASE_TEXT} characters"),
        ([{"case_id": "a", **{f"k{i}": i for i in range(MAX_CASE_KEYS)}}], f"{MAX_CASE_KEYS + 1} keys; at most 64"),
    ],
)
def test_malformed_cases_are_refused_naming_row_and_key(cases: object, message: str) -> None:
    with pytest.raises(ResultError) as caught:
        check_output({"result": RESULT, "cases": cases})
    assert message in str(caught.value)
    assert str(caught.value).startswith("evaluate() returned 'cases'")


def test_too_many_rows_are_refused() -> None:
    rows = [{"case_id": i} for i in range(MAX_CASES + 1)]
    with pytest.raises(ResultError, match=f"with {MAX_CASES + 1} rows; at most {MAX_CASES} can be stored"):
        check_cases(rows)
    assert len(check_cases(rows[:MAX_CASES])) == MAX_CASES


def test_text_is_made_storable() -> None:
    rows = check_cases([{"case_id": "a\x00b", "note": "\ud800"}])
    assert rows == [{"case_id": "a\ufffdb", "note": "?"}] or rows == [{"case_id": "a\ufffdb", "note": "\ufffd"}]
    json.dumps(rows).encode("utf-8")


def test_gzip_json_lines_round_trip() -> None:
    rows = check_cases([{"case_id": "c1", "y": 1, "p": 0.25, "site": "Zürich"}, {"case_id": "c2", "y": None}])
    data = encode_cases(rows)
    assert gzip.decompress(data).decode().splitlines() == [
        '{"case_id":"c1","y":1,"p":0.25,"site":"Zürich"}',
        '{"case_id":"c2","y":null}',
    ]
    assert decode_cases(data) == rows
    assert encode_cases(rows) == data  # no timestamp in the gzip header: the same rows, the same sha256


def test_bad_wire_bytes_are_refused() -> None:
    with pytest.raises(ResultError, match="not gzip'd JSON lines"):
        decode_cases(b"not gzip at all")
    with pytest.raises(ResultError, match="a line that is not JSON"):
        decode_cases(gzip.compress(b'{"case_id": "a"}\n{oops\n'))
    bomb = gzip.compress(b"[" * 0 + b'{"case_id":"a","x":"' + b"y" * 3_000_000 + b'"}\n')
    with pytest.raises(ResultError, match="unpack to more than 1 MiB"):
        decode_cases(bomb, max_bytes=1024**2)


def test_chunked_evaluation_joins_the_chunks_cases_in_order() -> None:
    from assay.evaluation.evaluator import CallResult
    from assay.evaluation.pool import _merged_cases

    partials = [{"hits": 1, "cases": [{"case_id": "a"}]}, {"hits": 0}, {"hits": 2, "cases": [{"case_id": "b"}]}]
    merged = CallResult(True, output={"result": RESULT})
    _merged_cases(merged, partials)
    assert merged.output["cases"] == [{"case_id": "a"}, {"case_id": "b"}]
    own = CallResult(True, output={"result": RESULT, "cases": [{"case_id": "z"}]})
    _merged_cases(own, partials)  # merge_chunks returned its own rows: kept
    assert own.output["cases"] == [{"case_id": "z"}]
    plain = CallResult(True, output={"result": RESULT})
    _merged_cases(plain, [{"hits": 1}])
    assert "cases" not in plain.output
