"""Validation of the per-case columns every metric receives, with errors that name the column and case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class AuditInputError(ValueError):
    """The per-case data cannot be scored as given (the message says which column and why)."""


def column(values: Any, name: str) -> np.ndarray:
    """A non-empty 1-D array of ``values``."""
    # A list keeps its Python values (a mixed [0, "2"] must not become the strings ["0", "2"]).
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise AuditInputError(f"{name} must be one value per case (a 1-D sequence), got shape {array.shape}")
    if array.size == 0:
        raise AuditInputError(f"{name} is empty: there are no cases to score")
    return array


def same_length(**columns: np.ndarray) -> int:
    """The common number of cases; an error naming each column's length when they differ."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise AuditInputError(f"every column needs one value per case, but {listed}")
    return next(iter(lengths.values()))


def numbers(values: Any, name: str) -> np.ndarray:
    """Finite floats: a missing or non-numeric value is an error naming its case index."""
    array = column(values, name)
    missing = [i for i, v in enumerate(array.tolist()) if v is None] if array.dtype == object else []
    if missing:
        raise AuditInputError(f"{name}[{missing[0]}] is missing")
    try:
        out = array.astype(float)
    except (TypeError, ValueError):
        bad = next(i for i, v in enumerate(array) if not _is_number(v))
        raise AuditInputError(f"{name}[{bad}] = {_shown(array[bad])} is not a number") from None
    not_finite = np.flatnonzero(~np.isfinite(out))
    if not_finite.size:
        raise AuditInputError(f"{name}[{not_finite[0]}] = {_shown(array[not_finite[0]])} is not a finite number")
    return out


def binary_reference(values: Any, name: str = "reference") -> np.ndarray:
    """0/1 (or False/True) reference labels as an int array."""
    array = numbers(values, name)
    bad = np.flatnonzero((array != 0) & (array != 1))
    if bad.size:
        raise AuditInputError(f"{name}[{bad[0]}] = {_shown(array[bad[0]])}: a binary reference is 0 or 1")
    return array.astype(np.int8)


def probabilities(values: Any, name: str = "probability") -> np.ndarray:
    """Probabilities of the positive class, each within [0, 1]."""
    array = numbers(values, name)
    bad = np.flatnonzero((array < 0) | (array > 1))
    if bad.size:
        raise AuditInputError(f"{name}[{bad[0]}] = {_shown(array[bad[0]])} is outside [0, 1]")
    return array


def label_codes(values: Any, labels: Sequence[Any], name: str, *, allow_missing: bool = False) -> np.ndarray:
    """Each value's position in the declared ``labels``; -1 for a missing value where that is allowed.

    An undeclared label is an error rather than a new class: a typo in a grade must not become a grade.
    """
    array = column(values, name)
    index = {label: i for i, label in enumerate(labels)}
    codes = np.empty(array.size, dtype=np.int64)
    for i, value in enumerate(array.tolist()):
        if _is_missing(value):
            if not allow_missing:
                raise AuditInputError(f"{name}[{i}] is missing")
            codes[i] = -1
            continue
        try:
            code = index.get(value, index.get(_as_int(value)))
        except TypeError:  # an unhashable value (a list, a dict) is no label either
            code = None
        if code is None:
            raise AuditInputError(f"{name}[{i}] = {value!r} is not one of the declared labels {list(labels)}")
        codes[i] = code
    return codes


def declared_labels(labels: Sequence[Any], name: str) -> list[Any]:
    out = list(labels)
    if len(out) < 2:
        raise AuditInputError(f"{name} must declare at least two labels, got {out}")
    if len(set(out)) != len(out):
        raise AuditInputError(f"{name} declares a label twice: {out}")
    return out


def _shown(value: Any) -> str:
    """A value as the host wrote it: 1.2, not np.float64(1.2)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _as_int(value: Any) -> Any:
    """2.0 read from JSON or a float column still names grade 2."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
