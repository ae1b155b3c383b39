"""What the worker hands the evaluation pool and what it gets back; EvalAI's result shape checks.

The shapes follow EvalAI's evaluation-script contract (``evaluate(test_annotation_file,
user_submission_file, phase_codename, **kwargs)`` returning ``{"result": [{split: {label: number}}],
...}``) so that existing challenge scripts run unchanged, and the error messages are written for the
participant (or host) who has to act on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .chunking import ChunkingSpec
from .limits import EvaluationLimits

ErrorKind = Literal["timeout", "memory", "crash", "script_error", "bad_output", "setup"]

#: Keys EvalAI reads from the dict evaluate() returns; others are kept but ignored by EvalAI.
RESULT_KEYS = ("result", "submission_result", "submission_metadata", "error")


@dataclass(frozen=True)
class EvaluationJob:
    """One submission to score with one phase's evaluation script.

    ``key`` names the warm evaluator that may serve the job (by convention
    ``"<sha256 of script zip>:<sha256 of annotation>"``); jobs with the same key, phase and limits
    share a warm process, so the key must change whenever the script or the annotation does.
    """

    key: str
    script_zip: Path
    annotation_file: Path | None
    submission_file: Path
    phase_codename: str
    submission_metadata: dict[str, Any] = field(default_factory=dict)
    limits: EvaluationLimits = field(default_factory=EvaluationLimits)
    chunking: ChunkingSpec | None = None


@dataclass
class EvaluationOutcome:
    """How an evaluation ended. ``output`` is the dict evaluate() returned, exactly as JSON carries it.

    ``error`` is a sentence a participant can act on; ``stderr`` holds the traceback when there is one.
    ``sandbox`` says what isolation was in force, ``warm`` whether an already running evaluator served
    the job (no import, no warm-up), ``chunks`` how many parts a chunked evaluation used.
    """

    ok: bool
    output: dict[str, Any] | None
    stdout: str
    stderr: str
    error: str | None
    error_kind: ErrorKind | None
    duration: float
    sandbox: str
    warm: bool = False
    chunks: int | None = None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_output(output: object, *, function: str = "evaluate") -> str | None:
    """Why ``output`` is not a usable evaluate() result, or None when it is.

    EvalAI's own worker only requires a ``result`` key; leaderboards then need ``{split: {label:
    number}}`` entries, so that is checked here too, with the offending split or label named. NaN and
    infinities are numbers (a metric can be undefined) and are passed through.
    """
    if not isinstance(output, dict):
        return f"{function}() returned {type(output).__name__}, not a dict with a 'result' key"
    if "result" not in output:
        return f"{function}() returned no 'result' key"
    result = output["result"]
    if not isinstance(result, list):
        return f"{function}() returned 'result' as {type(result).__name__}; EvalAI expects a list of {{split: metrics}}"
    for index, entry in enumerate(result):
        if not isinstance(entry, dict) or not entry:
            return f"{function}() returned result[{index}] that is not a {{split: metrics}} dict"
        for split, metrics in entry.items():
            if not isinstance(metrics, dict):
                return f"{function}() returned metrics for split {split!r} that are not a {{label: number}} dict"
            for label, value in metrics.items():
                if not _is_number(value):
                    return f"{function}() returned {split!r} metric {label!r} = {value!r}; metrics must be numbers"
    errors = output.get("error")
    if errors is not None and not isinstance(errors, list):
        return f"{function}() returned 'error' as {type(errors).__name__}; EvalAI expects a list of {{split: errors}}"
    return None


def has_non_finite(output: dict[str, Any]) -> bool:
    """Whether any metric is NaN or infinite (allowed, but strict JSON encoders refuse it)."""
    for entry in output.get("result", []):
        for metrics in entry.values():
            for value in metrics.values():
                if isinstance(value, float) and not math.isfinite(value):
                    return True
    return False
