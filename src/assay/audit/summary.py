"""The audit summary of one submission: every figure of its task with bootstrap intervals, the subgroup
tables, and for binary tasks calibration and the ROC curve; for graded tasks the confusion matrix.

One JSON document (the server stores it as ``AuditSummary.document``; the audit report draws from it), so
everything in it is plain JSON: no NaN, no NumPy scalars; an undefined figure is None with its reason.
The settings are the phase's bundle key ``audit``, checked here again because a host script may pass its
own: a malformed setting is an :class:`AuditInputError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, roc_curve

from assay.audit.binary import ONE_CLASS, BinaryTask
from assay.audit.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Task, figures
from assay.audit.calibration import CalibrationTask
from assay.audit.cases import Cases, from_rows
from assay.audit.inputs import AuditInputError
from assay.audit.multiclass import MulticlassTask
from assay.audit.ordinal import OrdinalTask
from assay.audit.regression import RegressionTask
from assay.audit.subgroups import DEFAULT_MIN_N, subgroup_report

TASKS = ("binary", "ordinal", "multiclass", "regression")
MAX_RESAMPLES = 10_000  # 10⁴ cases × 10⁴ resamples is already ~20 s of CPU per figure family
MAX_ROC_POINTS = 200  # enough to draw the curve; the full curve has a point per distinct score
KEYS = {
    "task",
    "prediction",
    "threshold",
    "grades",
    "referable_from",
    "subgroups",
    "min_group_size",
    "bootstrap",
    "intervals",
}
BOOTSTRAP_KEYS = {"resamples", "seed", "level"}
# The keys each task needs; a key of another task is refused rather than ignored (a misplaced threshold
# on an ordinal task is a misunderstanding worth naming).
TASK_KEYS = {
    "binary": ("threshold",),
    "ordinal": ("grades", "referable_from"),
    "multiclass": ("grades",),
    "regression": (),
}


def summarise(settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary document of per-case ``rows`` under the audit ``settings`` (see docs/audit-metrics.md)."""
    used = validated_settings(settings)
    boot = used["bootstrap"]
    cases = from_rows(rows, prediction=used["prediction"], attributes=used["subgroups"])
    task = _task(used, cases)
    unknown = sorted(set(used["intervals"].values()) - set(figure_names(used, task)))
    if unknown:
        raise AuditInputError(
            f"audit.intervals names {unknown}, which the {used['task']} task does not compute "
            f"(it computes {list(figure_names(used, task))})"
        )
    report = subgroup_report(
        task,
        {name: cases.attributes[name] for name in used["subgroups"]},
        min_n=used["min_group_size"],
        resamples=boot["resamples"],
        seed=boot["seed"],
        level=boot["level"],
    )
    # The headline is the subgroup report's overall figures: one bootstrap, so the two never disagree.
    headline = {name: {"reason": None, **figure.to_json()} for name, figure in report.overall.items()}
    document = {
        "task": used["task"],
        "n": task.n,
        "settings": used,
        "headline": headline,
        "subgroups": report.to_json(),
        "calibration": None,
        "curves": None,
        "confusion": None,
    }
    if isinstance(task, BinaryTask):
        document["calibration"] = _calibration(task, boot)
        document["curves"] = {"roc": _roc(task)}
    elif isinstance(task, OrdinalTask | MulticlassTask):
        document["confusion"] = _confusion(task)
    return json_safe(document)


def interval(summary: Mapping[str, Any], figure: str) -> tuple[float, float] | None:
    """``figure``'s (low, high) in a summary document, or None if it has no interval (or no such figure)."""
    found = (summary.get("headline") or {}).get(figure)
    if found is None:
        found = ((summary.get("calibration") or {}).get("figures") or {}).get(figure)
    if not isinstance(found, Mapping) or found.get("low") is None or found.get("high") is None:
        return None
    return float(found["low"]), float(found["high"])


def figure_names(settings: Mapping[str, Any], task: Task) -> tuple[str, ...]:
    """The figures a summary holds: the task's metrics, and for binary tasks the calibration figures."""
    extra = CalibrationTask.metrics if settings["task"] == "binary" else ()
    return (*task.metrics, *extra)


def validated_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as used: checked, with every default filled in."""
    if not isinstance(settings, Mapping):
        raise AuditInputError(f"audit settings must be a mapping of keys, got {type(settings).__name__}")
    unknown = sorted(set(settings) - KEYS)
    if unknown:
        raise AuditInputError(f"audit settings: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    task = settings.get("task")
    if task not in TASKS:
        raise AuditInputError(f"audit.task must be one of {list(TASKS)}, got {task!r}")
    for key in ("threshold", "grades", "referable_from"):
        given = settings.get(key) is not None
        if key in TASK_KEYS[task] and not given:
            raise AuditInputError(f"audit.{key} is required for a {task} task")
        if key not in TASK_KEYS[task] and given:
            raise AuditInputError(f"audit.{key} does not apply to a {task} task")
    prediction = settings.get("prediction") or ("probability" if task == "binary" else "prediction")
    if not isinstance(prediction, str):
        raise AuditInputError(f"audit.prediction must be the name of a row key, got {prediction!r}")
    used: dict[str, Any] = {"task": task, "prediction": prediction}
    if task == "binary":
        threshold = settings["threshold"]
        if not _is_number(threshold) or not 0 < threshold < 1:
            raise AuditInputError(f"audit.threshold must be a number between 0 and 1 (exclusive), got {threshold!r}")
        used["threshold"] = float(threshold)
    if task in ("ordinal", "multiclass"):
        grades = settings["grades"]
        if not isinstance(grades, Sequence) or isinstance(grades, str) or len(grades) < 2:
            raise AuditInputError(f"audit.grades must list at least two grades or labels, got {grades!r}")
        if any(isinstance(g, bool) or not isinstance(g, int | str) for g in grades):
            raise AuditInputError(f"audit.grades must be whole numbers or text, got {list(grades)!r}")
        if len(set(grades)) != len(grades):
            raise AuditInputError(f"audit.grades lists a grade twice: {list(grades)!r}")
        used["grades"] = list(grades)
    if task == "ordinal":
        referable = settings["referable_from"]
        if referable not in used["grades"][1:] or isinstance(referable, bool):
            raise AuditInputError(
                f"audit.referable_from must be one of the grades above the lowest {used['grades'][1:]}, "
                f"got {referable!r}"
            )
        used["referable_from"] = referable
    used["subgroups"] = _subgroups(settings.get("subgroups"))
    min_n = settings.get("min_group_size", DEFAULT_MIN_N)
    if not _is_whole(min_n) or min_n < 1:
        raise AuditInputError(f"audit.min_group_size must be a whole number of at least 1, got {min_n!r}")
    used["min_group_size"] = int(min_n)
    used["bootstrap"] = _bootstrap(settings.get("bootstrap"))
    used["intervals"] = _intervals(settings.get("intervals"))
    return used


def _subgroups(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise AuditInputError(f"audit.subgroups must be a list of column names, got {value!r}")
    if len(set(value)) != len(value):
        raise AuditInputError(f"audit.subgroups names a column twice: {list(value)!r}")
    return list(value)


def _bootstrap(value: Any) -> dict[str, Any]:
    value = {} if value is None else value
    if not isinstance(value, Mapping):
        raise AuditInputError(f"audit.bootstrap must be a mapping (resamples, seed, level), got {value!r}")
    unknown = sorted(set(value) - BOOTSTRAP_KEYS)
    if unknown:
        raise AuditInputError(f"audit.bootstrap: unknown key(s) {unknown}; known: {sorted(BOOTSTRAP_KEYS)}")
    resamples = value.get("resamples", DEFAULT_RESAMPLES)
    if not _is_whole(resamples) or not 0 <= resamples <= MAX_RESAMPLES:
        raise AuditInputError(
            f"audit.bootstrap.resamples must be a whole number from 0 to {MAX_RESAMPLES}, got {resamples!r}"
        )
    seed = value.get("seed", 0)
    if not _is_whole(seed) or not 0 <= seed < 2**63:
        raise AuditInputError(f"audit.bootstrap.seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    level = value.get("level", DEFAULT_LEVEL)
    if not _is_number(level) or not 0 < level < 1:
        raise AuditInputError(f"audit.bootstrap.level must be a number between 0 and 1 (exclusive), got {level!r}")
    return {"resamples": int(resamples), "seed": int(seed), "level": float(level)}


def _intervals(value: Any) -> dict[str, str]:
    value = {} if value is None else value
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        raise AuditInputError(f"audit.intervals must map leaderboard labels to figure names, got {value!r}")
    return dict(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _task(used: Mapping[str, Any], cases: Cases) -> Task:
    task = used["task"]
    if task == "binary":
        return BinaryTask.of(cases.reference, cases.prediction, threshold=used["threshold"])
    if task == "ordinal":
        return OrdinalTask.of(cases.reference, cases.prediction, used["grades"], used["referable_from"])
    if task == "multiclass":
        return MulticlassTask.of(cases.reference, cases.prediction, used["grades"])
    return RegressionTask.of(cases.reference, cases.prediction)


def _calibration(task: BinaryTask, boot: Mapping[str, Any]) -> dict[str, Any]:
    calibration = CalibrationTask.of(task.reference, task.probability)
    shown = figures(calibration, resamples=boot["resamples"], seed=boot["seed"], level=boot["level"])
    return {
        "figures": {name: {"reason": None, **figure.to_json()} for name, figure in shown.items()},
        "reliability": [
            {
                "low": b.low,
                "high": b.high,
                "n": b.n,
                "mean_probability": b.mean_probability,
                "observed": b.observed_fraction,
            }
            for b in calibration.reliability()
        ],
    }


def _roc(task: BinaryTask) -> dict[str, Any]:
    """The ROC curve, thinned to at most MAX_ROC_POINTS points (the first and last kept); undefined with
    one reference class."""
    if len(np.unique(task.reference)) < 2:
        return {"fpr": [], "tpr": [], "reason": ONE_CLASS}
    fpr, tpr, _ = roc_curve(task.reference, task.probability)
    if fpr.size > MAX_ROC_POINTS:
        keep = np.unique(np.linspace(0, fpr.size - 1, MAX_ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "reason": None}


def _confusion(task: OrdinalTask | MulticlassTask) -> dict[str, Any]:
    """Rows: reference; columns: prediction, in the declared order. Ordinal cases without a grade are
    counted per reference grade under ``ungraded``."""
    labels = list(task.grades if isinstance(task, OrdinalTask) else task.labels)
    k = len(labels)
    graded = task.prediction >= 0
    matrix = confusion_matrix(task.reference[graded], task.prediction[graded], labels=list(range(k)))
    out: dict[str, Any] = {"labels": labels, "matrix": matrix.tolist()}
    if isinstance(task, OrdinalTask):
        out["ungraded"] = np.bincount(task.reference[~graded], minlength=k).tolist()
    return out


def json_safe(value: Any) -> Any:
    """Plain JSON values: NumPy scalars as Python ones, NaN and infinities as None, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
