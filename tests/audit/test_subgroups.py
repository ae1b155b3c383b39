"""Subgroup tables: per-group figures, gap to overall, worst group and ratio, small groups suppressed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.audit import AuditInputError, BinaryTask, RegressionTask, subgroup_report

# Sex F: 4 positives, sensitivity 3/4; sex M: 4 positives, sensitivity 1/4; camera "x" has 2 cases only.
REFERENCE = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0]
PROBABILITY = [0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.9, 0.2, 0.3, 0.1, 0.4, 0.6]
SEX = ["F"] * 6 + ["M"] * 6
CAMERA = ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b", "x", "x"]


def report(**options):
    task = BinaryTask.of(REFERENCE, PROBABILITY)
    return subgroup_report(task, {"sex": SEX, "camera": CAMERA}, min_n=3, resamples=0, **options)


def test_gap_to_overall_and_worst_group_ratio():
    result = report()
    assert result.overall["sensitivity"].value == pytest.approx(4 / 8)
    sex = result.attributes[0]
    assert [(row.group, row.n, row.figures["sensitivity"].value) for row in sex.rows] == [
        ("F", 6, 0.75),
        ("M", 6, 0.25),
    ]
    assert [row.gap["sensitivity"] for row in sex.rows] == pytest.approx([0.25, -0.25])
    worst = sex.worst["sensitivity"]
    assert (worst.group, worst.value, worst.ratio) == ("M", 0.25, pytest.approx(1 / 3))


def test_groups_below_min_n_are_suppressed_and_left_out_of_the_worst_group():
    camera = report().attributes[1]
    x = [row for row in camera.rows if row.group == "x"][0]
    assert (x.n, x.suppressed, x.figures, x.gap) == (2, True, {}, {})
    # x alone has specificity 1/2, worse than a (1/1) and b (1/1): suppressed, it is not the worst group
    assert camera.worst["specificity"].group in {"a", "b"}
    assert camera.worst["specificity"].ratio == 1.0


def test_lower_is_better_metrics_take_the_largest_as_worst_and_bias_has_none():
    task = RegressionTask.of([0.0] * 8, [1, 1, 1, 1, 3, 3, 3, 3])
    table = subgroup_report(task, {"site": list("aaaabbbb")}, min_n=2, resamples=0).attributes[0]
    assert (table.worst["mae"].group, table.worst["mae"].ratio) == ("b", pytest.approx(1 / 3))
    assert "bias" not in table.worst


def test_the_report_is_json_with_intervals_for_every_shown_group():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    task = BinaryTask.of(y, np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1))
    site = rng.choice(["north", "south", "tiny"], 600, p=[0.5, 0.48, 0.02]).tolist()
    site[0] = None
    result = subgroup_report(task, {"site": site}, min_n=20, resamples=100, seed=3)
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    rows = {row["group"]: row for row in data["attributes"][0]["rows"]}
    assert set(rows) == {"north", "south", "tiny", "(missing)"}
    assert rows["tiny"]["suppressed"] and rows["(missing)"]["suppressed"]
    auroc = rows["north"]["figures"]["auroc"]
    assert auroc["low"] <= auroc["value"] <= auroc["high"]
    assert (data["min_n"], data["resamples"], data["seed"]) == (20, 100, 3)


def test_a_groups_intervals_do_not_depend_on_the_other_attributes():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    task = BinaryTask.of(y, rng.random(300))
    sex = rng.choice(["F", "M"], 300).tolist()
    alone = subgroup_report(task, {"sex": sex}, resamples=100, seed=9).attributes[0]
    beside = subgroup_report(task, {"age": rng.choice(["<50", "50+"], 300).tolist(), "sex": sex}, resamples=100, seed=9)
    assert beside.attributes[1] == alone


def test_bad_attributes_and_min_n_are_refused():
    task = BinaryTask.of(REFERENCE, PROBABILITY)
    with pytest.raises(AuditInputError, match="attribute 'sex' has 3 values for 12 cases"):
        subgroup_report(task, {"sex": ["F", "M", "F"]})
    with pytest.raises(AuditInputError, match="min_n must be at least 1, got 0"):
        subgroup_report(task, {"sex": SEX}, min_n=0)
