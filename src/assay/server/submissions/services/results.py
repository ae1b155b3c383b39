"""Checking what an evaluation returned before it counts, and turning it into leaderboard entries.

Accepted shapes (``reference/evalai.md`` §2.3 and §5.2):

* EvalAI's evaluate() dict: ``{"result": [{split: {label: number}}], "error"?: [{split: {"error_<label>": n}}],
  "submission_result"?: any, "submission_metadata"?: any}``;
* EvalAI's remote-worker list: ``[{"split": codename, "show_to_participant": bool, "accuracies": {...}}]``.

Every split must be one of the phase's, every label one of its leaderboard's, every number finite.
Missing labels make the submission ``partially_evaluated`` where the phase allows partial
evaluation, and fail it otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from assay.server.challenges.models import ChallengePhase, ChallengePhaseSplit


class ResultError(ValueError):
    """The evaluation's output cannot be used; the message says what to fix in the script."""


@dataclass
class SplitResult:
    metrics: dict[str, float]
    errors: dict[str, float] | None = None


@dataclass
class ParsedResult:
    splits: dict[str, SplitResult] = field(default_factory=dict)
    submission_result: Any = None
    submission_metadata: Any = None
    partial: bool = False


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ResultError(f"{where} is {value!r}, not a number")
    if not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars and numeric strings, as EvalAI's float() accepts
        except (TypeError, ValueError):
            raise ResultError(f"{where} is {value!r}, not a number") from None
    number = float(value)
    if not math.isfinite(number):
        raise ResultError(f"{where} is {number}, not a finite number")
    return number


def _remote_list_to_result(items: list) -> dict:
    result = []
    for item in items:
        if not isinstance(item, dict) or "split" not in item:
            raise ResultError("each item of a remote result needs 'split' and 'accuracies'")
        result.append({item["split"]: item.get("accuracies") or {}})
    return {"result": result}


def parse_output(output: Any, phase: ChallengePhase) -> ParsedResult:
    """Validate ``output`` against ``phase``'s splits and leaderboards. Raises :class:`ResultError`."""
    if isinstance(output, list):
        output = _remote_list_to_result(output)
    if not isinstance(output, dict):
        raise ResultError(f"evaluate() must return a dict, not {type(output).__name__}")
    if "result" not in output:
        raise ResultError("evaluate() returned no 'result' key")
    items = output["result"]
    if not isinstance(items, list):
        raise ResultError("'result' must be a list of {split_codename: {label: number}}")
    phase_splits = list(ChallengePhaseSplit.objects.filter(phase=phase).select_related("dataset_split", "leaderboard"))
    labels_by_split: dict[str, set[str]] = {}
    for ps in phase_splits:
        labels_by_split.setdefault(ps.dataset_split.codename, set()).update(ps.leaderboard.labels)
    parsed = ParsedResult(
        submission_result=output.get("submission_result"),
        submission_metadata=output.get("submission_metadata"),
    )
    for item in items:
        if not isinstance(item, dict):
            raise ResultError("each item of 'result' must be {split_codename: {label: number}}")
        for split, metrics in item.items():
            if split not in labels_by_split:
                known = sorted(labels_by_split) or "none"
                raise ResultError(f"split {split!r} is not a split of phase {phase.codename!r} (its splits: {known})")
            if not isinstance(metrics, dict):
                raise ResultError(f"the result for split {split!r} must be {{label: number}}")
            labels = labels_by_split[split]
            unknown = sorted(set(map(str, metrics)) - labels)
            if unknown:
                raise ResultError(f"split {split!r}: labels {unknown} are not on the leaderboard {sorted(labels)}")
            values = {str(k): _number(v, f"{split}.{k}") for k, v in metrics.items()}
            missing = labels - set(values)
            if missing:
                if not phase.is_partial_submission_evaluation_enabled:
                    raise ResultError(f"split {split!r}: labels {sorted(missing)} are missing")
                parsed.partial = True
            if split in parsed.splits:
                raise ResultError(f"split {split!r} appears twice in 'result'")
            parsed.splits[split] = SplitResult(metrics=values)
    for item in output.get("error") or []:
        if not isinstance(item, dict):
            raise ResultError("each item of 'error' must be {split_codename: {'error_<label>': number}}")
        for split, errors in item.items():
            if split not in parsed.splits or not isinstance(errors, dict):
                raise ResultError(f"'error' names split {split!r}, which has no result")
            parsed.splits[split].errors = {str(k): _number(v, f"error.{split}.{k}") for k, v in errors.items()}
    return parsed
