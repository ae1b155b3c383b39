"""Per-case rows (as an evaluation script returns them and the server stores them) turned into the
columns the tasks take, with the rules a row set must keep: every row has its id, reference and
prediction, and no case appears twice (a duplicated case would be counted twice in every figure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.audit.inputs import AuditInputError


@dataclass(frozen=True)
class Cases:
    """The rows' columns in row order; an attribute a row lacks is None (its own group, "(missing)")."""

    case_ids: list[str]
    reference: list[Any]
    prediction: list[Any]
    attributes: dict[str, list[Any]]


def from_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    case_id: str = "case_id",
    reference: str = "reference",
    prediction: str = "prediction",
    attributes: Sequence[str] = (),
) -> Cases:
    """Columns from rows such as ``{"case_id": "a1", "reference": 1, "probability": 0.8, "sex": "F"}``.

    ``prediction`` names the key that holds the prediction or probability. A prediction may be None (the
    model gave none; the ordinal task counts it against coverage) but must be present.
    """
    out = Cases([], [], [], {name: [] for name in attributes})
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise AuditInputError(f"row {i} is not an object of named values")
        for key in (case_id, reference, prediction):
            if key not in row:
                raise AuditInputError(f"row {i} has no {key!r}")
        name = str(row[case_id])
        if name in first_row:
            raise AuditInputError(f"case {name!r} appears twice (rows {first_row[name]} and {i})")
        first_row[name] = i
        out.case_ids.append(name)
        out.reference.append(row[reference])
        out.prediction.append(row[prediction])
        for attribute in attributes:
            out.attributes[attribute].append(row.get(attribute))
    if not out.case_ids:
        raise AuditInputError("there are no case rows to score")
    return out
