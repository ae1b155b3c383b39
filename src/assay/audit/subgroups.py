"""Subgroup tables: every metric per group of an attribute (sex, age band, camera…), with its interval,
its gap to the overall figure, and per attribute the worst group and the worst-to-best ratio.

Groups with fewer than ``min_n`` cases are suppressed: their row keeps n but no figures, because an
estimate from a handful of cases misleads and may identify people. Suppressed groups take no part in
the worst-group ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.audit.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Task, figures
from assay.audit.figures import Figure, finite_or_none
from assay.audit.inputs import AuditInputError, column

DEFAULT_MIN_N = 30
MISSING = "(missing)"


@dataclass(frozen=True)
class GroupRow:
    """One group of one attribute; ``figures`` and ``gap`` are empty when it is suppressed."""

    group: str
    n: int
    suppressed: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    gap: dict[str, float | None] = field(default_factory=dict)  # group value − overall value

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "suppressed": self.suppressed,
            "figures": {name: figure.to_json() for name, figure in self.figures.items()},
            "gap": self.gap,
        }


@dataclass(frozen=True)
class WorstGroup:
    """For one metric of one attribute: the worst shown group and min/max of the shown groups' values."""

    group: str
    value: float
    ratio: float | None  # None with fewer than two shown groups, or values below 0 or all 0

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "value": self.value, "ratio": self.ratio}


@dataclass(frozen=True)
class AttributeTable:
    attribute: str
    rows: list[GroupRow]
    worst: dict[str, WorstGroup]

    def to_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "rows": [row.to_json() for row in self.rows],
            "worst": {name: worst.to_json() for name, worst in self.worst.items()},
        }


@dataclass(frozen=True)
class SubgroupReport:
    """The overall figures and one table per attribute, with the settings that produced them."""

    overall: dict[str, Figure]
    attributes: list[AttributeTable]
    min_n: int
    resamples: int
    seed: int
    level: float

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": {name: figure.to_json() for name, figure in self.overall.items()},
            "attributes": [table.to_json() for table in self.attributes],
            "min_n": self.min_n,
            "resamples": self.resamples,
            "seed": self.seed,
            "level": self.level,
        }


def subgroup_report(
    task: Task,
    attributes: Mapping[str, Sequence[Any]],
    *,
    min_n: int = DEFAULT_MIN_N,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> SubgroupReport:
    """Overall figures and a subgroup table per attribute (one value per case; None is its own group).

    Each group's bootstrap has its own seed derived from ``seed`` and the group's name, so adding an
    attribute or a group does not change the intervals of the others.
    """
    if min_n < 1:
        raise AuditInputError(f"min_n must be at least 1, got {min_n}")
    overall = figures(task, resamples=resamples, seed=_seed(seed, "", ""), level=level)
    tables = []
    for attribute, values in attributes.items():
        groups = _group_names(values, attribute, task.n)
        rows = []
        for group in sorted(set(groups.tolist())):
            mask = groups == group
            n = int(mask.sum())
            if n < min_n:
                rows.append(GroupRow(group, n, suppressed=True))
                continue
            shown = figures(task.subset(mask), resamples=resamples, seed=_seed(seed, attribute, group), level=level)
            gap = {name: _difference(shown[name].value, overall[name].value) for name in task.metrics}
            rows.append(GroupRow(group, n, suppressed=False, figures=shown, gap=gap))
        tables.append(AttributeTable(attribute, rows, _worst(rows, task)))
    return SubgroupReport(overall, tables, min_n, resamples, seed, level)


def _group_names(values: Sequence[Any], attribute: str, n: int) -> np.ndarray:
    array = column(values, f"attribute {attribute!r}")
    if array.size != n:
        raise AuditInputError(f"attribute {attribute!r} has {array.size} values for {n} cases")
    names = [MISSING if v is None or (isinstance(v, float) and v != v) else str(v) for v in array.tolist()]
    return np.array(names, dtype=object)


def _seed(seed: int, attribute: str, group: str) -> np.random.SeedSequence:
    """A stable per-group seed (crc32, not hash(): Python salts string hashes per process)."""
    return np.random.SeedSequence([seed, zlib.crc32(attribute.encode()), zlib.crc32(group.encode())])


def _difference(value: float | None, overall: float | None) -> float | None:
    return None if value is None or overall is None else finite_or_none(value - overall)


def _worst(rows: list[GroupRow], task: Task) -> dict[str, WorstGroup]:
    """Per metric with a better direction: the worst shown group, and min/max over the shown groups."""
    out = {}
    for name in task.metrics:
        direction = task.higher_is_better.get(name)
        values = [(row.figures[name].value, row.group) for row in rows if not row.suppressed]
        values = [(v, g) for v, g in values if v is not None]
        if direction is None or not values:
            continue
        worst_value, worst_group = min(values) if direction else max(values)
        low, high = min(v for v, _ in values), max(v for v, _ in values)
        comparable = len(values) > 1 and low >= 0 and high > 0  # a ratio of signed values (MCC, kappa) means nothing
        ratio = finite_or_none(low / high) if comparable else None
        out[name] = WorstGroup(worst_group, worst_value, ratio)
    return out
