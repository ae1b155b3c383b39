"""Checking what an evaluation returned before it counts, and turning it into leaderboard entries.

Accepted shapes (``reference/evalai.md`` §2.3 and §5.2):

* EvalAI's evaluate() dict: ``{"result": [{split: {label: number}}], "error"?: [{split: {"error_<label>": n}}],
  "submission_result"?: any, "submission_metadata"?: any}``;
* EvalAI's remote-worker list: ``[{"split": codename, "show_to_participant": bool, "accuracies": {...}}]``.

The numbers follow the one result contract the worker also applies
(:func:`assay.evaluation.contract.check_output`): finite, or NaN/null for an undefined metric (stored
as null, ranked last); ±inf and non-numbers are refused. Here the phase is checked: every split must
be one of the phase's, every label one of its leaderboard's. Missing labels make the submission
``partially_evaluated`` where the phase allows partial evaluation, and fail it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.evaluation.contract import ResultError, check_output
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.phase_rules import split_rules

__all__ = ["ParsedResult", "ResultError", "SplitResult", "parse_output"]


@dataclass
class SplitResult:
    metrics: dict[str, float | None]  # None: undefined (NaN)
    errors: dict[str, float | None] | None = None
    intervals: dict[str, list[float]] | None = None  # Assay's: {label: [low, high]} shown beside the score


@dataclass
class ParsedResult:
    splits: dict[str, SplitResult] = field(default_factory=dict)
    submission_result: Any = None
    submission_metadata: Any = None
    partial: bool = False


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
    output = check_output(output)  # shapes and numbers, exactly as the worker checked them
    labels_by_split: dict[str, set[str]] = {}
    for rule in split_rules(phase.pk):
        labels_by_split.setdefault(rule.codename, set()).update(rule.labels)
    parsed = ParsedResult(
        submission_result=output.get("submission_result"),
        submission_metadata=output.get("submission_metadata"),
    )
    for item in output["result"]:
        for split, metrics in item.items():
            if split not in labels_by_split:
                known = sorted(labels_by_split) or "none"
                raise ResultError(f"split {split!r} is not a split of phase {phase.codename!r} (its splits: {known})")
            labels = labels_by_split[split]
            unknown = sorted(set(metrics) - labels)
            if unknown:
                raise ResultError(f"split {split!r}: labels {unknown} are not on the leaderboard {sorted(labels)}")
            missing = labels - set(metrics)
            if missing:
                if not phase.is_partial_submission_evaluation_enabled:
                    raise ResultError(f"split {split!r}: labels {sorted(missing)} are missing")
                parsed.partial = True
            if split in parsed.splits:
                raise ResultError(f"split {split!r} appears twice in 'result'")
            parsed.splits[split] = SplitResult(metrics=metrics)
    for item in output.get("error") or []:
        for split, errors in item.items():
            if split not in parsed.splits:
                raise ResultError(f"'error' names split {split!r}, which has no result")
            parsed.splits[split].errors = errors
    for item in output.get("intervals") or []:  # checked by check_output: each split has a result
        for split, intervals in item.items():
            if split in parsed.splits:
                parsed.splits[split].intervals = {**(parsed.splits[split].intervals or {}), **intervals}
    return parsed
