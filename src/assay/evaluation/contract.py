"""What the worker hands the evaluation pool and what it gets back; EvalAI's result shape checks.

The shapes follow EvalAI's evaluation-script contract (``evaluate(test_annotation_file,
user_submission_file, phase_codename, **kwargs)`` returning ``{"result": [{split: {label: number}}],
...}``) so that existing challenge scripts run unchanged, and the error messages are written for the
participant (or host) who has to act on them.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assay.bundle.environments import DEFAULT_ENVIRONMENT

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
    environment: str = DEFAULT_ENVIRONMENT  # the Python environment the script runs in (assay.bundle.environments)


@dataclass
class EvaluationOutcome:
    """How an evaluation ended. ``output`` is the dict evaluate() returned, exactly as JSON carries it.

    ``error`` is a sentence a participant can act on; ``stderr`` holds the traceback when there is one.
    ``sandbox`` says what isolation was in force, ``warm`` whether an already running evaluator served
    the job (no import, no warm-up), ``chunks`` how many parts a chunked evaluation used, and
    ``stages`` where its time went (wall and CPU seconds of the split, the chunks and the merge).
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
    stages: dict[str, Any] | None = None


#: How an undefined metric (NaN in a script, null in JSON and in the database) is shown everywhere.
UNDEFINED = "\u2014"
#: Metric values (result plus error bars) one output may hold; leaderboards have a few dozen labels.
MAX_METRICS = 1000
#: The whole output as strict JSON; it travels in one report (the server takes 10 MiB with the logs).
MAX_OUTPUT_BYTES = 4 * 1024**2
#: Nesting of the free-form parts; deeper documents are refused before a JSON encoder overflows its stack.
MAX_DEPTH = 64
#: Per-case rows (the Assay key ``cases``): rows, keys per row and characters per text value.
MAX_CASES = 200_000
MAX_CASE_KEYS = 64
MAX_CASE_TEXT = 1000
#: The rows as the worker sends them (gzip'd JSON lines): the compressed bytes the server takes, and the
#: uncompressed bytes it reads before giving up (a gzip bomb stops there).
MAX_CASES_GZIP_BYTES = 6 * 1024**2
MAX_CASES_JSONL_BYTES = 256 * 1024**2


class ResultError(ValueError):
    """The output cannot be stored; the message names the split and label and says what to return."""


def check_output(output: object, *, function: str = "evaluate") -> dict[str, Any]:
    """``output`` as it is stored and sent, or :class:`ResultError` saying why it cannot be.

    The one result contract: the worker applies it before reporting, the server when it accepts a
    report, so neither can take what the other refuses. EvalAI's worker only requires a ``result``
    key; leaderboards also need ``{split: {label: number}}`` entries, so that is checked here too.

    * a metric (or error bar) is a finite number, kept as a float; numeric strings count, as EvalAI's
      database casts them;
    * NaN (or null) is a legitimate *undefined* metric (sensitivity without positives): it becomes
      None, stored as JSON null, shown as :data:`UNDEFINED` and ranked last;
    * ±inf, and anything that is not a number, fail the submission: an infinity cannot be ranked
      against anything, and storing it would break strict JSON;
    * the free-form keys (``submission_result``, ``submission_metadata``, others) keep any JSON, but a
      non-finite number in them becomes null, since strict JSON (and so the worker protocol) has no
      token for it;
    * more than :data:`MAX_METRICS` values, :data:`MAX_OUTPUT_BYTES` of JSON or :data:`MAX_DEPTH`
      levels are refused;
    * the per-case rows (``cases``, Assay's key) are checked by :func:`check_cases` and left out: they
      are stored apart (:func:`split_cases`), so their size does not count here.
    """
    if not isinstance(output, dict):
        raise ResultError(f"{function}() returned {type(output).__name__}, not a dict with a 'result' key")
    output, _ = split_cases(output, function=function)  # checked here, stored apart (never in the output)
    if "result" not in output:
        raise ResultError(f"{function}() returned no 'result' key")
    counter = [0]
    clean: dict[str, Any] = {"result": _entries(output["result"], "result", function, counter)}
    if output.get("error") is not None:
        clean["error"] = _entries(output["error"], "error", function, counter)
    if output.get("intervals") is not None:
        clean["intervals"] = _intervals(output["intervals"], clean["result"], function)
    for key, value in output.items():
        if key not in ("result", "error", "intervals"):
            clean[_text(str(key))] = json_safe(value, f"{function}() returned {key!r}")
    size = len(json.dumps(clean, allow_nan=False, separators=(",", ":")).encode())
    if size > MAX_OUTPUT_BYTES:
        raise ResultError(
            f"{function}() returned {size / 1024**2:.1f} MiB of JSON; at most {MAX_OUTPUT_BYTES // 1024**2} MiB "
            "can be stored (write large per-sample details to stdout instead)"
        )
    return clean


def split_cases(output: dict[str, Any], *, function: str = "evaluate") -> tuple[dict[str, Any], list[dict] | None]:
    """``output`` without its ``cases`` key, and those rows checked by :func:`check_cases` (None: no key).

    The per-case rows are Assay's addition to EvalAI's output: private (a row holds the reference label),
    possibly large, so they never stay in the stored output, which participants may read. The worker
    splits them off before it reports (and sends them as their own part); the server does the same to a
    report's output, so one rule holds on both sides.
    """
    if "cases" not in output:
        return output, None
    rest = {key: value for key, value in output.items() if key != "cases"}
    if output["cases"] is None:
        return rest, None
    return rest, check_cases(output["cases"], function=function)


def check_cases(cases: object, *, function: str = "evaluate") -> list[dict[str, Any]]:
    """The per-case rows as stored, or :class:`ResultError` naming the row and key at fault.

    A list of at most :data:`MAX_CASES` flat objects, each with a unique non-empty ``case_id`` (text or
    integer, kept as text) and at most :data:`MAX_CASE_KEYS` keys whose values are scalars: text (at most
    :data:`MAX_CASE_TEXT` characters), numbers, true/false or null. NaN becomes null (an undefined
    probability, say); ±inf is refused, as for a metric.
    """
    where = f"{function}() returned 'cases'"
    if not isinstance(cases, list | tuple):
        raise ResultError(f"{where} as {type(cases).__name__}; it must be a list of rows like "
                          "{'case_id': 'c001', 'reference': 1, 'prediction': 0}")  # fmt: skip
    if len(cases) > MAX_CASES:
        raise ResultError(f"{where} with {len(cases)} rows; at most {MAX_CASES} can be stored")
    seen: set[str] = set()
    rows = []
    for index, row in enumerate(cases):
        if not isinstance(row, dict):
            raise ResultError(f"{where}[{index}] as {type(row).__name__}, not an object of case_id and values")
        if len(row) > MAX_CASE_KEYS:
            raise ResultError(f"{where}[{index}] has {len(row)} keys; at most {MAX_CASE_KEYS} are allowed")
        case_id = row.get("case_id")
        if not isinstance(case_id, str | int | float | bool | None):
            case_id = _case_value(case_id, f"{where}[{index}] 'case_id'")  # a numpy integer, say
        if isinstance(case_id, bool) or not isinstance(case_id, str | int) or str(case_id).strip() == "":
            raise ResultError(f"{where}[{index}] has no 'case_id' (a non-empty text or integer): {_short(row)}")
        case_id = _text(str(case_id))
        if len(case_id) > MAX_CASE_TEXT:
            raise ResultError(f"{where}[{index}] has a case_id longer than {MAX_CASE_TEXT} characters")
        if case_id in seen:
            raise ResultError(f"{where}[{index}] repeats case_id {case_id!r}; each case appears once")
        seen.add(case_id)
        clean: dict[str, Any] = {"case_id": case_id}
        for key, value in row.items():
            if key == "case_id":
                continue
            name = _text(str(key))
            if not name or len(name) > MAX_CASE_TEXT:
                raise ResultError(f"{where}[{index}] (case {case_id!r}) has a key that is empty or too long")
            clean[name] = _case_value(value, f"{where}[{index}] (case {case_id!r}) key {name!r}")
        rows.append(clean)
    return rows


def _case_value(value: object, where: str) -> str | int | float | bool | None:
    """One value of a case row: a scalar as JSON carries it (NaN → null, numpy scalars as numbers)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_CASE_TEXT:
            raise ResultError(f"{where} is {len(value)} characters long; at most {MAX_CASE_TEXT} are kept per value")
        return _text(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ResultError(f"{where} = {value}; a value must be finite (NaN, stored as null, means unknown)")
        return value
    item = getattr(value, "item", None)  # numpy scalars (np.int64, np.float32, np.bool_) as Python's
    if callable(item) and not isinstance(value, list | dict | tuple):
        try:
            plain = item()
        except (TypeError, ValueError):
            plain = None
        if isinstance(plain, bool | int | float | str):
            return _case_value(plain, where)
    raise ResultError(f"{where} = {_short(value)}; a case value must be text, a number, true/false or null")


def encode_cases(rows: list[dict[str, Any]]) -> bytes:
    """Rows as the worker sends them and the server stores them: gzip'd JSON lines, one row a line (no
    timestamp in the header, so the same rows give the same bytes and sha256)."""
    encode = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode
    text = "".join(encode(row) + "\n" for row in rows)
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def decode_cases(data: bytes, *, max_bytes: int = MAX_CASES_JSONL_BYTES) -> list[Any]:
    """The rows of :func:`encode_cases`' bytes, unchecked (pass them to :func:`check_cases`); a
    :class:`ResultError` for bytes that are not gzip'd JSON lines or unpack beyond ``max_bytes``."""
    rows = []
    read = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as lines:
            while line := lines.readline(max_bytes - read + 1):
                read += len(line)
                if read > max_bytes:
                    raise ResultError(f"the per-case rows unpack to more than {max_bytes // 1024**2} MiB")
                if line.strip():
                    rows.append(json.loads(line))
    except ResultError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ResultError(f"the per-case rows are not gzip'd JSON lines ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise ResultError(f"the per-case rows hold a line that is not JSON ({exc})") from None
    return rows


def checked_result(output: object, *, function: str = "evaluate") -> tuple[dict[str, Any], list[dict] | None]:
    """``output`` as stored (:func:`check_output`) and its per-case rows (:func:`split_cases`; None: none),
    or :class:`ResultError`. The one check of a worker's result: the pool runs it on each outcome
    (:func:`validate_output`) and the worker's report sends what it returns."""
    if not isinstance(output, dict):
        raise ResultError(f"{function}() returned {type(output).__name__}, not a dict with a 'result' key")
    rest, cases = split_cases(output, function=function)
    return check_output(rest, function=function), cases


def validate_output(output: object, *, function: str = "evaluate") -> str | None:
    """Why ``output`` is not a usable result (:func:`checked_result`'s message), or None when it is."""
    try:
        checked_result(output, function=function)
    except ResultError as exc:
        return str(exc)
    return None


def metric_value(value: object, where: str) -> float | None:
    """One metric as stored: a finite float, or None when undefined (NaN or null)."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, list | dict | tuple):
        raise ResultError(f"{where} = {_short(value)}, which is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]  # numeric strings and numpy scalars, as float() takes them
    except OverflowError:
        raise ResultError(f"{where} = {_short(value)}, which is too large for a number") from None
    except (TypeError, ValueError):
        raise ResultError(f"{where} = {_short(value)}, which is not a number") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise ResultError(
            f"{where} = {number}; a metric must be a finite number "
            f"(return NaN for an undefined metric: it is shown as {UNDEFINED!r} and ranked last)"
        )
    return number


def display_metric(value: object, precision: int | None = None) -> str:
    """A stored metric as text: :data:`UNDEFINED` for None (undefined or missing), else the number."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return UNDEFINED
    if precision is None:
        return f"{value:.6g}"
    return f"{value:.{max(0, min(int(precision), 20))}f}"


def describe_result(result: object) -> str:
    """A stored ``result`` list as one line (``split: label=value, …; …``), undefined values as "—"."""
    parts = []
    for item in result if isinstance(result, list) else []:
        for split, metrics in item.items() if isinstance(item, dict) else ():
            shown = metrics.items() if isinstance(metrics, dict) else ()
            parts.append(f"{split}: " + ", ".join(f"{label}={display_metric(v)}" for label, v in shown))
    return "; ".join(parts)


def json_safe(value: object, where: str = "the output", depth: int = 0) -> Any:
    """Free-form JSON as strict JSON: NaN and ±inf become null, text becomes valid UTF-8."""
    if depth > MAX_DEPTH:
        raise ResultError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): json_safe(v, where, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, where, depth + 1) for v in value]
    return _text(str(value))  # as EvalAI writes these keys: json.dumps(default=str)


def _entries(items: object, key: str, function: str, counter: list[int]) -> list[dict[str, dict[str, float | None]]]:
    """``result`` or ``error``: a list of {split: {label: number}}, every number checked."""
    shape = "{split: metrics}" if key == "result" else "{split: {'error_<label>': number}}"
    if not isinstance(items, list):
        raise ResultError(f"{function}() returned {key!r} as {type(items).__name__}; EvalAI expects a list of {shape}")
    out = []
    for index, entry in enumerate(items):
        if not isinstance(entry, dict) or (key == "result" and not entry):
            raise ResultError(f"{function}() returned {key}[{index}] that is not a {shape} dict")
        clean: dict[str, dict[str, float | None]] = {}
        for split, metrics in entry.items():
            split = _text(str(split))
            if not isinstance(metrics, dict):
                raise ResultError(
                    f"{function}() returned {key} for split {split!r} as {type(metrics).__name__}, "
                    "not a {label: number} dict"
                )
            counter[0] += len(metrics)
            if counter[0] > MAX_METRICS:
                raise ResultError(
                    f"{function}() returned more than {MAX_METRICS} metric values; a leaderboard shows a few "
                    "labels per split (put per-sample details in 'submission_result' or stdout)"
                )
            what = "split" if key == "result" else "error bars of split"
            clean[split] = {
                _text(str(label)): metric_value(value, f"{function}() returned {what} {split!r} metric {str(label)!r}")
                for label, value in metrics.items()
            }
        out.append(clean)
    return out


def _intervals(items: object, result: list[dict[str, dict[str, float | None]]], function: str) -> list[dict]:
    """Assay's ``intervals``: a list of {split: {label: [low, high]}}, each label one of that split's result
    labels, low <= high, both finite (a confidence interval shown beside the score)."""
    shape = "a list of {split: {label: [low, high]}}"
    if not isinstance(items, list) or not all(isinstance(entry, dict) for entry in items):
        raise ResultError(f"{function}() returned 'intervals' that is not {shape}")
    if sum(len(entry) + sum(len(m) for m in entry.values() if isinstance(m, dict)) for entry in items) > MAX_METRICS:
        raise ResultError(f"{function}() returned more than {MAX_METRICS} intervals")
    labels = {split: set(metrics) for entry in result for split, metrics in entry.items()}
    out = []
    for entry in items:
        clean: dict[str, dict[str, list[float]]] = {}
        for split, pairs in entry.items():
            split = _text(str(split))
            if split not in labels:
                raise ResultError(f"{function}() returned intervals for split {split!r}, which has no result")
            if not isinstance(pairs, dict):
                raise ResultError(f"{function}() returned intervals for split {split!r} that are not {shape}")
            clean[split] = {}
            for label, pair in pairs.items():
                where = f"{function}() returned an interval for split {split!r} metric {str(label)!r}"
                if label not in labels[split]:
                    raise ResultError(f"{where}, which is not in that split's result")
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise ResultError(f"{where} that is not [low, high]")
                low, high = (metric_value(v, where) for v in pair)
                if low is None or high is None:
                    raise ResultError(f"{where} with an undefined end; both ends must be finite numbers")
                if low > high:
                    raise ResultError(f"{where} with low {low} above high {high}")
                clean[split][label] = [low, high]
        out.append(clean)
    return out


def _text(value: str) -> str:
    """Valid UTF-8 (a lone surrogate from a JSON escape would make the report unsendable) without NUL
    (PostgreSQL cannot store it, and the server's API refuses it): both become U+FFFD / "?"."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
