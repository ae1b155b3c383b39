"""Stored per-case rows into task columns, end to end through the figures and a subgroup table."""

from __future__ import annotations

import pytest

from assay.audit import AuditInputError, OrdinalTask, subgroup_report
from assay.audit.cases import from_rows

ROWS = [
    {"case_id": "a", "reference": 0, "grade": 0, "sex": "F"},
    {"case_id": "b", "reference": 2, "grade": 2, "sex": "M"},
    {"case_id": "c", "reference": 3, "grade": None, "sex": "F"},
    {"case_id": "d", "reference": 1, "grade": 2},
]


def test_rows_become_columns_that_a_task_and_a_subgroup_table_take():
    cases = from_rows(ROWS, prediction="grade", attributes=["sex"])
    assert cases.case_ids == ["a", "b", "c", "d"]
    assert cases.attributes == {"sex": ["F", "M", "F", None]}
    task = OrdinalTask.of(cases.reference, cases.prediction, [0, 1, 2, 3], referable_from=2)
    assert task.point()["coverage"].value == 0.75
    table = subgroup_report(task, cases.attributes, min_n=2, resamples=0).attributes[0]
    assert [(row.group, row.n, row.suppressed) for row in table.rows] == [
        ("(missing)", 1, True),
        ("F", 2, False),
        ("M", 1, True),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"case_id": "a", "reference": 1, "prediction": 1}, {"case_id": "a", "reference": 0, "prediction": 0}],
            "case 'a' appears twice \\(rows 0 and 1\\)",
        ),
        ([{"case_id": "a", "prediction": 1}], "row 0 has no 'reference'"),
        ([{"reference": 1, "prediction": 1}], "row 0 has no 'case_id'"),
        ([["a", 1, 1]], "row 0 is not an object of named values"),
        ([], "there are no case rows to score"),
    ],
)
def test_bad_rows_are_refused(rows, message):
    with pytest.raises(AuditInputError, match=message):
        from_rows(rows)
